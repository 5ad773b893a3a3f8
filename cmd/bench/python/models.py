"""Builds the scikit-learn side of the benchmark's workloads.

For each workload it writes <out>/<name>.joblib (the fitted scikit-learn
model the FastAPI contender serves) and, where modelgate serves the very
same function, <out>/<name>.weights.json with raw float32 layer files that
the Go side writes into an ONNX model:

  breast-cancer  StandardScaler + MLPClassifier(16), trained on
                 examples/breast-cancer/data.csv (modelgate serves the
                 committed examples/breast-cancer/model.onnx, same
                 architecture, its own weights)
  digits         MLPClassifier 64 -> 256 -> 256 -> 10 trained on
                 bench/data/digits.csv.gz; exported
  wide           MLPClassifier 256 -> 4096 -> 4096 -> 10 with seeded random
                 weights (compute dominates); exported

Usage: python3 models.py --out DIR --breast CSV --digits CSV.GZ
"""
import argparse
import gzip
import json
import os
import warnings

import joblib
import numpy as np
from sklearn.exceptions import ConvergenceWarning
from sklearn.neural_network import MLPClassifier
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler


def export(mlp, out, name):
    """Writes the layers of a fitted MLPClassifier as raw little-endian float32."""
    layers = []
    for i, (w, b) in enumerate(zip(mlp.coefs_, mlp.intercepts_)):
        wf, bf = f"{name}.w{i}.f32", f"{name}.b{i}.f32"
        np.asarray(w, dtype="<f4").tofile(os.path.join(out, wf))
        np.asarray(b, dtype="<f4").tofile(os.path.join(out, bf))
        layers.append({"w": wf, "b": bf, "in": int(w.shape[0]), "out": int(w.shape[1])})
    with open(os.path.join(out, f"{name}.weights.json"), "w") as f:
        json.dump({"layers": layers, "activation": mlp.activation, "classes": [int(c) for c in mlp.classes_]}, f)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", required=True)
    ap.add_argument("--breast", required=True)
    ap.add_argument("--digits", required=True)
    a = ap.parse_args()
    os.makedirs(a.out, exist_ok=True)
    warnings.simplefilter("ignore", ConvergenceWarning)

    data = np.loadtxt(a.breast, delimiter=",", skiprows=1)
    x, y = data[:, :-1], data[:, -1].astype(int)
    bc = make_pipeline(StandardScaler(), MLPClassifier(hidden_layer_sizes=(16,), max_iter=300, random_state=1))
    bc.fit(x, y)
    joblib.dump(bc, os.path.join(a.out, "breast-cancer.joblib"))

    with gzip.open(a.digits, "rt") as f:
        data = np.loadtxt(f, delimiter=",")
    x, y = data[:, :-1], data[:, -1].astype(int)
    dg = MLPClassifier(hidden_layer_sizes=(256, 256), max_iter=60, random_state=1)
    dg.fit(x, y)
    dg._optimizer = None
    joblib.dump(dg, os.path.join(a.out, "digits.joblib"))
    export(dg, a.out, "digits")

    rng = np.random.default_rng(7)
    wide = MLPClassifier(hidden_layer_sizes=(4096, 4096), max_iter=1)
    wide.fit(rng.standard_normal((20, 256)), np.arange(20) % 10)  # structure only
    wide.coefs_ = [(rng.standard_normal(w.shape) / np.sqrt(w.shape[0])).astype(np.float32) for w in wide.coefs_]
    wide.intercepts_ = [np.zeros(b.shape, dtype=np.float32) for b in wide.intercepts_]
    wide._optimizer = None  # training state only
    joblib.dump(wide, os.path.join(a.out, "wide.joblib"))
    export(wide, a.out, "wide")
    print("models written to", a.out)


if __name__ == "__main__":
    main()
