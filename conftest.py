"""Repository-wide pytest settings."""

# `python -m core` entry point: importing it would run the command line.
collect_ignore = [
    "core/__main__.py",
    # the entry point and the server launcher build the app when imported: they are run, not imported
    "dashboard/app.py",
    "dashboard/serve.py",
    # Streamlit page scripts: importing one runs the page (they are tested through AppTest)
    "pages",
]
