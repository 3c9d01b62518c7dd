// Weight initializers (seed 004): keep Var[y] = n Var[w] Var[x] equal to Var[x] across layers.
//   Xavier/Glorot: Var[w] = 2 / (fanIn + fanOut)   (uniform limit √(6 / (fanIn + fanOut)))
//   He/Kaiming:    Var[w] = 2 / fanIn               (ReLU zeroes half the units; uniform limit √(6 / fanIn))

/// How to draw a weight tensor.
public enum Initializer: Sendable, Equatable {
    case xavierUniform, xavierNormal, heUniform, heNormal
    /// N(0, σ²).
    case normal(standardDeviation: Float)
    case zeros

    /// (fanIn, fanOut) of a weight: Linear [in, out]; convolution [O, C, KH, KW] → (C·KH·KW, O·KH·KW).
    public static func fans(_ shape: [Int]) -> (fanIn: Int, fanOut: Int) {
        switch shape.count {
        case 0: return (1, 1)
        case 1: return (shape[0], shape[0])
        case 2: return (shape[0], shape[1])
        default:
            let receptive = shape[2...].reduce(1, *)
            return (shape[1] * receptive, shape[0] * receptive)
        }
    }

    /// A tensor of `shape` drawn from this initializer.
    public func tensor(_ shape: [Int], generator: inout RandomGenerator) -> Tensor {
        let (fanIn, fanOut) = Self.fans(shape)
        switch self {
        case .xavierUniform:
            let limit = (6 / Float(fanIn + fanOut)).squareRoot()
            return Tensor(randomUniform: shape, lowerBound: -limit, upperBound: limit, generator: &generator)
        case .xavierNormal:
            return Tensor(randomNormal: shape, standardDeviation: (2 / Float(fanIn + fanOut)).squareRoot(), generator: &generator)
        case .heUniform:
            let limit = (6 / Float(fanIn)).squareRoot()
            return Tensor(randomUniform: shape, lowerBound: -limit, upperBound: limit, generator: &generator)
        case .heNormal:
            return Tensor(randomNormal: shape, standardDeviation: (2 / Float(fanIn)).squareRoot(), generator: &generator)
        case .normal(let sigma):
            return Tensor(randomNormal: shape, standardDeviation: sigma, generator: &generator)
        case .zeros:
            return Tensor.zeros(shape)
        }
    }
}
