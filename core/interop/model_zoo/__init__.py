"""Models for other tools: bioimage.io (BioImage Model Zoo) packages that deepImageJ, ilastik, QuPath and BiaPy run.

* :mod:`~core.interop.model_zoo.exporting` — a run as a package: ``rdf.yaml``, Keras, SavedModel and ONNX weights
  (ONNX checked against Keras), test tensors, cover, README; validated offline;
* :mod:`~core.interop.model_zoo.importing` — a package (folder or zip) as a model of the registry;
* :mod:`~core.interop.model_zoo.package`, :mod:`~core.interop.model_zoo.rdf`, :mod:`~core.interop.model_zoo.readme`,
  :mod:`~core.interop.model_zoo.weights` — finding and validating packages, the description, its README, weights;
* :mod:`~core.interop.model_zoo.onnx_runtime` — predicting with ONNX weights where no Keras weights came.
"""
