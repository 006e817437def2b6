"""MetaScope dashboard: Streamlit pages over the core engine."""
