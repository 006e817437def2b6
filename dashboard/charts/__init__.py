"""Figure builders: pure functions from plain data (lists, arrays) to plotly figures or PIL images.

Nothing here reads session state or calls Streamlit, so each builder is tested directly.
"""
