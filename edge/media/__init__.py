"""Reading media files: images (``edge.media.image``) and WAV audio (``edge.media.audio``)."""
