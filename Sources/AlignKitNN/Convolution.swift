// Convolution and pooling layers over NCHW tensors.

/// 2-D convolution: [N, C, H, W] → [N, O, H', W'], filter [O, C, KH, KW] (He-uniform), bias [O].
public struct Conv2D: Layer {
    public var filter: Tensor
    public var bias: Tensor?
    public let stride: Int, padding: Int

    public init(inputChannels: Int, outputChannels: Int, kernelSize: Int, stride: Int = 1, padding: Int = 0,
                useBias: Bool = true, initializer: Initializer = .heUniform, generator: inout RandomGenerator) {
        filter = initializer.tensor([outputChannels, inputChannels, kernelSize, kernelSize], generator: &generator)
        bias = useBias ? Tensor.zeros([outputChannels]) : nil
        self.stride = stride
        self.padding = padding
    }

    public mutating func forEachNamedParameter(prefix: String, _ body: (String, inout Tensor) throws -> Void) rethrows {
        try body(joinName(prefix, "weight"), &filter)
        if bias != nil { try body(joinName(prefix, "bias"), &bias!) }
    }

    public func callAsFunction(_ input: Tensor) -> Tensor {
        conv2D(input, filter: filter, bias: bias, stride: stride, padding: padding)
    }
}

/// Max pooling over `size` x `size` windows.
public struct MaxPool2D: Layer {
    public let size: Int, stride: Int, padding: Int
    public init(size: Int, stride: Int? = nil, padding: Int = 0) { self.size = size; self.stride = stride ?? size; self.padding = padding }
    public mutating func forEachNamedParameter(prefix: String, _ body: (String, inout Tensor) throws -> Void) rethrows {}
    public func callAsFunction(_ input: Tensor) -> Tensor { maxPool2D(input, size: size, stride: stride, padding: padding) }
}

/// Average pooling over `size` x `size` windows.
public struct AvgPool2D: Layer {
    public let size: Int, stride: Int, padding: Int
    public init(size: Int, stride: Int? = nil, padding: Int = 0) { self.size = size; self.stride = stride ?? size; self.padding = padding }
    public mutating func forEachNamedParameter(prefix: String, _ body: (String, inout Tensor) throws -> Void) rethrows {}
    public func callAsFunction(_ input: Tensor) -> Tensor { averagePool2D(input, size: size, stride: stride, padding: padding) }
}
