// AlignKitAlignment: this module's place in the layer table of DESIGN.md; its contents arrive with later issues.
@_exported import AlignKitTensor
