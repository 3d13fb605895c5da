"""edge-convert: FP32 ONNX models into bundles for device profiles."""
