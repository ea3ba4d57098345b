"""``rnnkit serve``: an HTTP inference service over export directories (no TensorFlow).

    from rnnkit.serve import load_models, create_app, ServeConfig
    service = create_app(load_models(["exported/sentiment"]), ServeConfig(max_batch=32))
    uvicorn.run(service.app)

App-specific code lives in ``rnnkit.serve.predictors`` only.
"""

from rnnkit.serve.app import ServeConfig, Service, create_app
from rnnkit.serve.command import load_models
from rnnkit.serve.predictors import Limits, load_adapter
