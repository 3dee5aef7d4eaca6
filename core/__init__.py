"""CellSeg engine: plain Python, numpy, OpenCV and Keras. Never imports Streamlit."""
