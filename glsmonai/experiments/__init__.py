"""Experiments: training models on folds and seeds, predicting, and putting their scores on one table.

``glsmonai compare`` (:func:`~glsmonai.experiments.compare.compare`) trains every model on every round
(:mod:`~glsmonai.experiments.rounds`) and training seed (:mod:`~glsmonai.experiments.training`), predicts
the test cases plainly and with prediction-time variants (:mod:`~glsmonai.experiments.variants`), scores
them with :mod:`glsmonai.evaluation` and writes the tables (:mod:`~glsmonai.experiments.tables`), and predicts
an external test set with every model's fold ensemble and fold models (:mod:`~glsmonai.experiments.external`);
``glsmonai compare-pool`` (:func:`~glsmonai.experiments.pool.pool_runs`) pools comparisons that differ only
in their training seed. :mod:`glsmonai.evaluation` knows nothing of training: it scores folders.
"""
