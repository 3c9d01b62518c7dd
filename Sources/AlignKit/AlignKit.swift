// AlignKit: `import AlignKit` brings in every module of the toolkit.
@_exported import AlignKitTensor
@_exported import AlignKitNN
@_exported import AlignKitText
@_exported import AlignKitModels
@_exported import AlignKitAlignment
