"""The Python stack modelgate replaces: FastAPI + uvicorn serving a
scikit-learn model, with the /predict API of simple Python model servers.

  MODEL=path/to/model.joblib python3 -m uvicorn app:app --app-dir bench/python

POST /predict {"features": [...]} or {"instances": [[...], ...]} answers
{"prediction": [...], "probabilities": [[...], ...]}; GET /healthz is 200.
"""
import os
from typing import List, Optional

import joblib
import numpy as np
from fastapi import FastAPI, HTTPException
from pydantic import BaseModel

model = joblib.load(os.environ["MODEL"])
app = FastAPI()


class PredictRequest(BaseModel):
    features: Optional[List[float]] = None
    instances: Optional[List[List[float]]] = None


@app.get("/healthz")
def healthz():
    return {"status": "ok"}


@app.post("/predict")
def predict(req: PredictRequest):
    if (req.features is None) == (req.instances is None):
        raise HTTPException(status_code=400, detail='send "features" or "instances"')
    x = np.asarray([req.features] if req.features is not None else req.instances, dtype=np.float32)
    try:
        proba = model.predict_proba(x)
    except ValueError as e:
        raise HTTPException(status_code=400, detail=str(e))
    return {"prediction": proba.argmax(axis=1).tolist(), "probabilities": proba.tolist()}
