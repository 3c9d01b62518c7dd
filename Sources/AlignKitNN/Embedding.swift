// Token embeddings and positional encodings: sinusoidal (Vaswani et al.), learned, rotary (Su et al.).
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// A lookup table: token ids → rows of `table` [vocabularySize, dimension].
public struct Embedding: NamedParameters {
    public var table: Tensor

    public init(vocabularySize: Int, dimension: Int, standardDeviation: Float = 0.02, generator: inout RandomGenerator) {
        table = Tensor(randomNormal: [vocabularySize, dimension], standardDeviation: standardDeviation, generator: &generator)
    }

    public init(table: Tensor) {
        precondition(table.rank == 2, "Embedding: table \(table.shape) must be rank 2")
        self.table = table
    }

    public mutating func forEachNamedParameter(prefix: String, _ body: (String, inout Tensor) throws -> Void) rethrows {
        try body(joinName(prefix, "weight"), &table)
    }

    /// Rows for `ids`, shaped `shape + [dimension]` (shape defaults to [ids.count]).
    public func callAsFunction(_ ids: [Int], shape: [Int]? = nil) -> Tensor {
        let outer = shape ?? [ids.count]
        precondition(outer.reduce(1, *) == ids.count, "Embedding: \(ids.count) ids do not fill shape \(outer)")
        return table.gathering(atIndices: ids, alongAxis: 0).reshaped(to: outer + [table.shape[1]])
    }
}

/// Fixed sinusoidal position encodings [length, dimension]:
/// PE[p, 2i] = sin(p / 10000^(2i/d)), PE[p, 2i+1] = cos(p / 10000^(2i/d)).
public func sinusoidalPositionalEncoding(length: Int, dimension: Int) -> Tensor {
    var values = [Float](repeating: 0, count: length * dimension)
    for p in 0..<length {
        for i in stride(from: 0, to: dimension, by: 2) {
            let angle = Double(p) / pow(10000, Double(i) / Double(dimension))
            values[p * dimension + i] = Float(sin(angle))
            if i + 1 < dimension { values[p * dimension + i + 1] = Float(cos(angle)) }
        }
    }
    return Tensor(values, shape: [length, dimension])
}

/// Learned absolute positions: a table [maximumLength, dimension] added to the input.
public struct LearnedPositionalEmbedding: Layer {
    public var table: Tensor

    public init(maximumLength: Int, dimension: Int, generator: inout RandomGenerator) {
        table = Tensor(randomNormal: [maximumLength, dimension], standardDeviation: 0.02, generator: &generator)
    }

    public mutating func forEachNamedParameter(prefix: String, _ body: (String, inout Tensor) throws -> Void) rethrows {
        try body(joinName(prefix, "weight"), &table)
    }

    /// x [..., T, C] + table[0..<T].
    public func callAsFunction(_ input: Tensor) -> Tensor {
        let length = input.shape[input.rank - 2]
        precondition(length <= table.shape[0], "LearnedPositionalEmbedding: length \(length) exceeds \(table.shape[0])")
        return input + table.slice(alongAxis: 0, range: 0..<length)
    }
}

/// Rotary position embedding in the "rotate half" layout of GPT-NeoX and Llama: for x [..., T, D],
/// x' = x cos(pθ) + rotateHalf(x) sin(pθ), rotateHalf([x₁, x₂]) = [-x₂, x₁], θᵢ = base^(-2i/D),
/// each frequency used for dimension i and i + D/2. No parameters.
public struct RotaryEmbedding: Sendable {
    public let dimension: Int
    public let base: Float
    let cosine: Tensor, sine: Tensor  // [maximumLength, D]

    public init(dimension: Int, maximumLength: Int, base: Float = 10000) {
        precondition(dimension % 2 == 0, "RotaryEmbedding: dimension \(dimension) must be even")
        self.dimension = dimension
        self.base = base
        let half = dimension / 2
        var c = [Float](repeating: 0, count: maximumLength * dimension), s = c
        for p in 0..<maximumLength {
            for i in 0..<half {
                let angle = Double(p) * pow(Double(base), -2 * Double(i) / Double(dimension))
                for j in [i, i + half] {
                    c[p * dimension + j] = Float(cos(angle))
                    s[p * dimension + j] = Float(sin(angle))
                }
            }
        }
        cosine = Tensor(c, shape: [maximumLength, dimension])
        sine = Tensor(s, shape: [maximumLength, dimension])
    }

    /// Rotates x [..., T, D] by positions `offset..<offset + T`.
    public func callAsFunction(_ x: Tensor, offset: Int = 0) -> Tensor {
        let t = x.shape[x.rank - 2], d = x.shape[x.rank - 1]
        precondition(d == dimension, "RotaryEmbedding: last axis \(d) of \(x.shape) must be \(dimension)")
        precondition(offset + t <= cosine.shape[0], "RotaryEmbedding: positions up to \(offset + t) exceed \(cosine.shape[0])")
        return rotate(x, cosine.slice(alongAxis: 0, range: offset..<(offset + t)), sine.slice(alongAxis: 0, range: offset..<(offset + t)))
    }

    /// Rotates x [R, heads·D] (rows of packed sequences, each head's D values together), row r by
    /// `positions[r]`.
    public func callAsFunction(rows x: Tensor, heads: Int, positions: [Int]) -> Tensor {
        precondition(x.rank == 2 && x.shape[1] == heads * dimension && positions.count == x.shape[0],
                     "RotaryEmbedding: \(positions.count) positions for x \(x.shape) (need [R, \(heads)·\(dimension)] and R positions)")
        let shape = [x.shape[0], 1, dimension]
        return rotate(x.reshaped(to: [x.shape[0], heads, dimension]), cosine.gathering(atIndices: positions).reshaped(to: shape),
                      sine.gathering(atIndices: positions).reshaped(to: shape)).reshaped(to: x.shape)
    }

    /// x cos + rotate_half(x) sin, with rotate_half(x) = [-x₂, x₁].
    func rotate(_ x: Tensor, _ c: Tensor, _ s: Tensor) -> Tensor {
        let d = x.shape[x.rank - 1]
        let halves = x.split(sizes: [d / 2, d / 2], alongAxis: -1)
        let rotated = concatenate([halves[1].negated(), halves[0]], alongAxis: -1)
        return x * c + rotated * s
    }
}
