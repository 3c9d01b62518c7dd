@_exported import AlignKitTensor
