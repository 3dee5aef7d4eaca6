"""Working with the lab's other tools: cells out to, and outlines in from, Fiji/ImageJ, QuPath and OME-TIFF.

* :mod:`~core.interop.geometry` — cells ⇄ pixel-corner polygons, pixel for pixel (the convention both tools use);
* :mod:`~core.interop.cell_files` — writers: ImageJ ROI zips, QuPath GeoJSON, OME-TIFF label images;
* :mod:`~core.interop.export` — what to export (a prediction, an evaluation, a dataset) and ``export-cells``;
* :mod:`~core.interop.roi_reader`, :mod:`~core.interop.geojson_reader` — readers of Fiji and QuPath outlines,
  into :mod:`~core.interop.outline_files`' records;
* :mod:`~core.interop.annotations` — outlines drawn into a dataset's instance mask (the import's rules);
* :mod:`~core.interop.model_zoo` — trained models as bioimage.io packages, and such packages as models.
"""
