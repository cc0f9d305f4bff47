"""plotly figures and the HTML report, built only from result files."""
