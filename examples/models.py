"""Example models trained on scikit-learn's bundled datasets (no downloads), for demos and tests."""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np


@dataclass
class ExampleModel:
    """A trained example: the in-memory model, its artifact and held-out rows."""

    name: str
    artifact: Path
    estimator: Any
    feature_names: list[str]
    metrics: dict[str, float]
    description: str
    X_test: np.ndarray
    y_test: np.ndarray
    serve_optimized: bool = False  # registered with --optimize; its function has the onnx layer

    def manifest_entry(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "artifact": self.artifact.name,
            "feature_names": self.feature_names,
            "metrics": self.metrics,
            "description": self.description,
            "sample": self.X_test[:5].tolist(),
        }


def _split(loader: Callable[..., Any]) -> tuple[Any, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    from sklearn.model_selection import train_test_split

    data = loader()
    X_train, X_test, y_train, y_test = train_test_split(
        data.data, data.target, test_size=0.25, random_state=0
    )
    return data, X_train, X_test, y_train, y_test


def train_iris(out_dir: Path) -> ExampleModel:
    """Iris: StandardScaler + LogisticRegression pipeline, saved with skops."""
    import skops.io as sio
    from sklearn.datasets import load_iris
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    data, X_train, X_test, y_train, y_test = _split(load_iris)
    model = make_pipeline(StandardScaler(), LogisticRegression(max_iter=500)).fit(X_train, y_train)
    path = out_dir / "iris.skops"
    sio.dump(model, path)
    return ExampleModel(
        "iris",
        path,
        model,
        list(data.feature_names),
        {"accuracy": float(model.score(X_test, y_test))},
        "Iris species: scaler + logistic regression",
        X_test,
        y_test,
    )


def train_breast_cancer(out_dir: Path) -> ExampleModel:
    """Breast cancer: XGBoost classifier, saved in XGBoost's native JSON."""
    import xgboost as xgb
    from sklearn.datasets import load_breast_cancer

    data, X_train, X_test, y_train, y_test = _split(load_breast_cancer)
    model = xgb.XGBClassifier(n_estimators=200, max_depth=4, learning_rate=0.1, n_jobs=1, random_state=0)
    model.fit(X_train, y_train)
    path = out_dir / "breast-cancer.json"
    model.save_model(path)
    accuracy = float((model.predict(X_test) == y_test).mean())
    return ExampleModel(
        "breast-cancer",
        path,
        model,
        [str(n) for n in data.feature_names],
        {"accuracy": accuracy},
        "Breast cancer diagnosis: XGBoost, 200 trees",
        X_test,
        y_test,
    )


def train_diabetes(out_dir: Path) -> ExampleModel:
    """Diabetes progression: random forest regressor, saved with skops."""
    import skops.io as sio
    from sklearn.datasets import load_diabetes
    from sklearn.ensemble import RandomForestRegressor

    data, X_train, X_test, y_train, y_test = _split(load_diabetes)
    model = RandomForestRegressor(n_estimators=50, max_depth=8, random_state=0, n_jobs=1).fit(
        X_train, y_train
    )
    path = out_dir / "diabetes.skops"
    sio.dump(model, path)
    return ExampleModel(
        "diabetes",
        path,
        model,
        list(data.feature_names),
        {"r2": float(model.score(X_test, y_test))},
        "Diabetes progression: random forest regressor",
        X_test,
        y_test,
        serve_optimized=True,
    )


TRAINERS: dict[str, Callable[[Path], ExampleModel]] = {
    "iris": train_iris,
    "breast-cancer": train_breast_cancer,
    "diabetes": train_diabetes,
}


def train_all(out_dir: Path, names: list[str] | None = None) -> list[ExampleModel]:
    """Train the named examples (default: all) into ``out_dir`` and write ``manifest.json`` there."""
    out_dir.mkdir(parents=True, exist_ok=True)
    examples = [TRAINERS[name](out_dir) for name in (names or list(TRAINERS))]
    for example in examples:
        (out_dir / f"{example.name}.metrics.json").write_text(json.dumps(example.metrics))
    manifest = [e.manifest_entry() for e in examples]
    (out_dir / "manifest.json").write_text(json.dumps(manifest, indent=2))
    return examples
