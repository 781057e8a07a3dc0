"""Query compilation: table conditions, session search, dataset selection, DataFrames."""
