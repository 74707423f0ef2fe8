"""From masks to measurements: iris biometrics and LV measures of predictions, and their agreement
with the same measures on the references.

* :mod:`~glsmonai.measure.iris`: iris area, thickness at 750 / 2000 um from the root and its maximum,
  length, curvature (per half); pupil diameter, root-to-root distance.
* :mod:`~glsmonai.measure.lv`: LV area, long axis, annulus width, area-length volume; per patient
  (CAMUS names) ED / ES volumes, ejection fraction and the biplane method of discs.
* :mod:`~glsmonai.measure.agreement`: Bland-Altman statistics and plots.
* :mod:`~glsmonai.measure.table`: one row per scan for a prediction folder (``glsmonai measure``).
* :mod:`~glsmonai.measure.truth`: the true measures of the phantoms, from their generators' shapes.
* :mod:`~glsmonai.measure.phantoms`: the phantom data sets with ``measures_true.csv`` (``glsmonai synth``).
"""

from glsmonai.measure.agreement import agreement_stats, agreement_table, bland_altman_plot
from glsmonai.measure.table import TASKS, MeasureResult, measure_columns, measure_folder, measure_label, truth_table
from glsmonai.measure.truth import true_measures

__all__ = [
    "TASKS",
    "MeasureResult",
    "agreement_stats",
    "agreement_table",
    "bland_altman_plot",
    "measure_columns",
    "measure_folder",
    "measure_label",
    "true_measures",
    "truth_table",
]
