"""MLflow pyfunc model files (self-contained: each is copied into the registered model)."""
