"""Model manifests, the zoo, and resolving what a user names into a verified model file."""
