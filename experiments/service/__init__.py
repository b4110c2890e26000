"""The decision service scaled out: the same FastAPI app in several Ray Serve replicas."""
