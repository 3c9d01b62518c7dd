// AlignKitAlignment: sequence log-probabilities, the DPO family, SFT, reward models, KTO, PPO and
// evaluation. It re-exports the layers below so `import AlignKitAlignment` is enough to train.
@_exported import AlignKitModels
@_exported import AlignKitNN
@_exported import AlignKitTensor
@_exported import AlignKitText
