"""Training the judge and its helpers from the store: the meta reward model
(`core.training.meta_rm`) and rule-based RL (`core.training.rl`). torch,
transformers and trl are imported inside the functions that train, so the
rest of GRM Studio starts without them."""
