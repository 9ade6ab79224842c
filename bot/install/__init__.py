"""Install-time only: the one-off ONNX export of the embedding model."""
