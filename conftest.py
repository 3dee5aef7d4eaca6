"""Repository-wide pytest settings."""

# `python -m core` entry point: importing it would run the command line.
collect_ignore = ["core/__main__.py",
                  # the server launcher builds the web app when imported (it is run, not imported)
                  "dashboard/serve.py"]
