"""Prediction on whole videos (sliding windows), annotated copies, the pop-up window and ONNX export."""
