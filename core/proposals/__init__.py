"""Proposals: masks a model draws for the images people have not labelled yet, and the order to correct them in.

- :mod:`core.proposals.job`: the proposal job (``python -m core propose``), which never touches a mask a person
  made;
- :mod:`core.proposals.uncertainty`: how unsure the model is about each image, from its probability map;
- :mod:`core.proposals.correction_queue`: the order people correct proposals in (uncertainty weighed with how
  much each image adds to what the corrected images already cover).
"""
