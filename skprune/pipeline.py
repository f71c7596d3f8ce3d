"""Pipelines that prune at fit time only (imbalanced-learn's, re-exported).

scikit-learn's own ``Pipeline`` cannot change the number of samples;
imbalanced-learn's runs a sampler's ``fit_resample`` while fitting and skips
it when predicting or scoring, which is what pruning needs: test data is
never pruned.
"""

from imblearn.pipeline import Pipeline, make_pipeline

__all__ = ["Pipeline", "make_pipeline"]
