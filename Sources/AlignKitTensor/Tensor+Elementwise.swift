// Elementwise operations, each beside its vector–Jacobian product.
import CAlignKitKernels

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

// MARK: - Binary arithmetic with broadcasting

extension Tensor {
    /// `self + other`, broadcast. d/da = g, d/db = g (summed over broadcast axes).
    public func adding(_ other: Tensor) -> Tensor {
        let (a, b) = (self, other), (sa, sb) = (shape, other.shape)   // the pullback keeps shapes, not buffers
        let sum = sa == sb ? Tensor.summed(a, b) : Tensor.broadcasting(a, b, operation: "add", +)
        return sum.recorded(from: [a, b]) { g, t in
            [t[0] ? g.summed(toShape: sa) : nil, t[1] ? g.summed(toShape: sb) : nil]
        }
    }

    /// `self - other`, broadcast.
    public func subtracting(_ other: Tensor) -> Tensor {
        let (a, b) = (self, other), (sa, sb) = (shape, other.shape)
        return Tensor.broadcasting(a, b, operation: "sub", -).recorded(from: [a, b]) { g, t in
            [t[0] ? g.summed(toShape: sa) : nil, t[1] ? g.negated().summed(toShape: sb) : nil]
        }
    }

    /// `self * other`, broadcast. d/da = g b, d/db = g a.
    public func multiplying(_ other: Tensor) -> Tensor {
        let (a, b) = (self, other)
        return Tensor.broadcasting(a, b, operation: "mul", *).recorded(from: [a, b]) { g, t in
            [t[0] ? Tensor.broadcasting(g, b, operation: "mul", *).summed(toShape: a.shape) : nil,
             t[1] ? Tensor.broadcasting(g, a, operation: "mul", *).summed(toShape: b.shape) : nil]
        }
    }

    /// `self / other`, broadcast. d/da = g / b, d/db = -g a / b².
    public func dividing(by other: Tensor) -> Tensor {
        let (a, b) = (self, other)
        let y = Tensor.broadcasting(a, b, operation: "div", /)
        return y.recorded(from: [a, b]) { g, t in
            let gOverB = Tensor.broadcasting(g, b, operation: "div", /)
            return [t[0] ? gOverB.summed(toShape: a.shape) : nil,
                    t[1] ? Tensor.zipped(gOverB, y) { -$0 * $1 }.summed(toShape: b.shape) : nil]
        }
    }

    /// Elementwise maximum, broadcast. The gradient goes to `self` where `self >= other`, else to `other`.
    public func maximum(_ other: Tensor) -> Tensor {
        let (a, b) = (self, other)
        return Tensor.broadcasting(a, b, operation: "maximum") { Swift.max($0, $1) }.recorded(from: [a, b]) { g, t in
            let takeA = Tensor.broadcasting(a, b, operation: "maximum") { $0 >= $1 ? 1 : 0 }
            return Tensor.routed(g, takeA, a.shape, b.shape, t)
        }
    }

    /// Elementwise minimum, broadcast. The gradient goes to `self` where `self <= other`, else to `other`.
    public func minimum(_ other: Tensor) -> Tensor {
        let (a, b) = (self, other)
        return Tensor.broadcasting(a, b, operation: "minimum") { Swift.min($0, $1) }.recorded(from: [a, b]) { g, t in
            let takeA = Tensor.broadcasting(a, b, operation: "minimum") { $0 <= $1 ? 1 : 0 }
            return Tensor.routed(g, takeA, a.shape, b.shape, t)
        }
    }

    /// Splits g between two inputs by a 0/1 mask (1: first input).
    private static func routed(_ g: Tensor, _ mask: Tensor, _ sa: [Int], _ sb: [Int], _ t: [Bool]) -> [Tensor?] {
        [t[0] ? Tensor.zipped(g, mask) { $0 * $1 }.summed(toShape: sa) : nil,
         t[1] ? Tensor.zipped(g, mask) { $0 * (1 - $1) }.summed(toShape: sb) : nil]
    }

    /// `self` raised to the power `exponent`, broadcast. d/da = g b a^(b-1), d/db = g a^b ln a.
    public func raised(toPower exponent: Tensor) -> Tensor {
        let (a, b) = (self, exponent)
        let y = Tensor.broadcasting(a, b, operation: "pow") { powf($0, $1) }
        return y.recorded(from: [a, b]) { g, t in
            let shape = y.shape
            let ea = a.broadcastCopy(to: shape), eb = b.broadcastCopy(to: shape)
            return [t[0] ? Tensor.zipped(g, ea, eb) { g, a, b in g * b * powf(a, b - 1) }.summed(toShape: a.shape) : nil,
                    t[1] ? Tensor.zipped(g, y, ea) { g, y, a in g * y * logf(a) }.summed(toShape: b.shape) : nil]
        }
    }

    /// `self` raised to a constant power. d/dx = g p x^(p-1).
    public func raised(toPower p: Float) -> Tensor {
        let x = self
        if p == 2 {
            return mapped { $0 * $0 }.recorded(from: [x]) { g, _ in [Tensor.zipped(g, x) { 2 * $0 * $1 }] }
        }
        return mapped { powf($0, p) }.recorded(from: [x]) { g, _ in
            [Tensor.zipped(g, x) { g, x in g * p * powf(x, p - 1) }]
        }
    }

    public static func + (a: Tensor, b: Tensor) -> Tensor { a.adding(b) }
    public static func - (a: Tensor, b: Tensor) -> Tensor { a.subtracting(b) }
    public static func * (a: Tensor, b: Tensor) -> Tensor { a.multiplying(b) }
    public static func / (a: Tensor, b: Tensor) -> Tensor { a.dividing(by: b) }
    public static func + (a: Tensor, s: Float) -> Tensor { a.addingScalar(s) }
    public static func + (s: Float, a: Tensor) -> Tensor { a.addingScalar(s) }
    public static func - (a: Tensor, s: Float) -> Tensor { a.addingScalar(-s) }
    public static func - (s: Float, a: Tensor) -> Tensor { a.negated().addingScalar(s) }
    public static func * (a: Tensor, s: Float) -> Tensor { a.scaled(by: s) }
    public static func * (s: Float, a: Tensor) -> Tensor { a.scaled(by: s) }
    public static func / (a: Tensor, s: Float) -> Tensor { a.scaled(by: 1 / s) }
    public static func / (s: Float, a: Tensor) -> Tensor { Tensor(s).dividing(by: a) }
    public static prefix func - (a: Tensor) -> Tensor { a.negated() }
}

// MARK: - Unary operations

extension Tensor {
    /// Applies `f` and records `pullback(x, y, g) -> dx`.
    @inline(__always)
    func unary(_ f: (Float) -> Float, pullback: @escaping (_ x: Tensor, _ y: Tensor, _ g: Tensor) -> Tensor) -> Tensor {
        let x = self
        let y = mapped(f)
        return y.recorded(from: [x]) { g, _ in [pullback(x, y, g)] }
    }

    /// Applies a vectorized kernel and records `pullback(x, y, g) -> dx`.
    func unary(vectorized f: (UnsafePointer<Float>?, UnsafeMutablePointer<Float>?, Int64) -> Void,
               pullback: @escaping (_ x: Tensor, _ y: Tensor, _ g: Tensor) -> Tensor) -> Tensor {
        let x = self
        let y = mapped(vectorized: f)
        return y.recorded(from: [x]) { g, _ in [pullback(x, y, g)] }
    }

    /// `self + s`.
    public func addingScalar(_ s: Float) -> Tensor { unary({ $0 + s }) { _, _, g in g } }
    /// `self * s`.
    public func scaled(by s: Float) -> Tensor { unary({ $0 * s }) { _, _, g in g.mapped { $0 * s } } }
    /// `-self`.
    public func negated() -> Tensor { unary({ -$0 }) { _, _, g in g.mapped { -$0 } } }
    /// eˣ. d = g y.
    public func exp() -> Tensor { unary(vectorized: ak_vexp) { _, y, g in Tensor.zipped(g, y, *) } }
    /// ln x. d = g / x.
    public func log() -> Tensor { unary(vectorized: ak_vlog) { x, _, g in Tensor.zipped(g, x, /) } }
    /// √x. d = g / (2 y).
    public func squareRoot() -> Tensor { unary(sqrtf) { _, y, g in Tensor.zipped(g, y) { $0 / (2 * $1) } } }
    /// |x|. d = g sign(x) (0 at 0).
    public func absoluteValue() -> Tensor {
        unary(fabsf) { x, _, g in Tensor.zipped(g, x) { g, x in x > 0 ? g : (x < 0 ? -g : 0) } }
    }
    /// x clamped to [lower, upper]. The gradient passes where lower ≤ x ≤ upper.
    public func clamped(lower: Float = -.infinity, upper: Float = .infinity) -> Tensor {
        precondition(lower <= upper, "clamp: lower \(lower) > upper \(upper)")
        return unary({ Swift.min(Swift.max($0, lower), upper) }) { x, _, g in
            Tensor.zipped(g, x) { g, x in x >= lower && x <= upper ? g : 0 }
        }
    }

    /// σ(x) = 1 / (1 + e⁻ˣ), stable for large |x|. d = g y (1 - y).
    public func sigmoid() -> Tensor { unary(vectorized: ak_vsigmoid) { _, y, g in Tensor.zipped(g, y) { $0 * $1 * (1 - $1) } } }
    /// tanh x. d = g (1 - y²).
    public func tanh() -> Tensor { unary(vectorized: ak_vtanh) { _, y, g in Tensor.zipped(g, y) { $0 * (1 - $1 * $1) } } }
    /// max(x, 0). d = g where x > 0.
    public func relu() -> Tensor { unary({ Swift.max($0, 0) }) { x, _, g in Tensor.zipped(g, x) { $1 > 0 ? $0 : 0 } } }
    /// x σ(x) (SiLU, swish). d = g (σ + x σ (1 - σ)).
    public func silu() -> Tensor {
        unary({ $0 * Tensor.sigmoid($0) }) { x, _, g in
            Tensor.zipped(g, x) { g, x in let s = Tensor.sigmoid(x); return g * (s + x * s * (1 - s)) }
        }
    }
    /// ln(1 + eˣ), computed as max(x, 0) + ln(1 + e^-|x|). d = g σ(x).
    public func softplus() -> Tensor {
        unary(Tensor.softplus) { x, _, g in Tensor.zipped(g, x) { $0 * Tensor.sigmoid($1) } }
    }
    /// ln σ(x) = -softplus(-x), stable for large |x|. d = g σ(-x).
    public func logSigmoid() -> Tensor {
        unary({ -Tensor.softplus(-$0) }) { x, _, g in Tensor.zipped(g, x) { $0 * Tensor.sigmoid(-$1) } }
    }

    /// GELU, exact: x Φ(x) = x/2 (1 + erf(x/√2)) (Hendrycks & Gimpel). d = g (Φ(x) + x φ(x)).
    public func gelu() -> Tensor {
        unary({ 0.5 * $0 * (1 + erff($0 * 0.70710678118654752)) }) { x, _, g in
            Tensor.zipped(g, x) { g, x in
                let cdf = 0.5 * (1 + erff(x * 0.70710678118654752))
                let pdf = expf(-0.5 * x * x) * 0.39894228040143268
                return g * (cdf + x * pdf)
            }
        }
    }

    /// GELU, tanh approximation (GPT-2): x/2 (1 + tanh(√(2/π) (x + 0.044715 x³))).
    /// One vectorized pass each way (`ak_gelu_tanh`, `ak_gelu_tanh_backward`; libm's scalar tanhf was a
    /// quarter of a GPT-2 DPO step, then three passes each way a few percent); the backward pass
    /// recomputes tanh rather than keeping another activation-sized tensor.
    public func geluTanh() -> Tensor {
        let x = self
        return mapped(vectorized: ak_gelu_tanh).recorded(from: [x]) { g, _ in
            let dx = Tensor(uninitializedShape: x.shape)
            let gp = UncheckedSendable(g.pointer), xp = UncheckedSendable(x.pointer), dp = UncheckedSendable(dx.pointer)
            Parallel.forChunks(x.scalarCount) { range in
                ak_gelu_tanh_backward(gp.value + range.lowerBound, xp.value + range.lowerBound, dp.value + range.lowerBound, Int64(range.count))
            }
            return [dx]
        }
    }

    /// σ(x) for one number, stable for large |x|.
    @inline(__always) public static func sigmoidScalar(_ x: Float) -> Float { sigmoid(x) }

    @inline(__always) static func sigmoid(_ x: Float) -> Float {
        x >= 0 ? 1 / (1 + expf(-x)) : { let e = expf(x); return e / (1 + e) }()
    }

    @inline(__always) static func softplus(_ x: Float) -> Float { Swift.max(x, 0) + log1pf(expf(-fabsf(x))) }
}

// MARK: - Comparisons, selection, masks (no gradient through the condition)

extension Tensor {
    /// 1 where `self > other`, else 0 (broadcast). Not differentiable: the result is a constant.
    public func isGreater(than other: Tensor) -> Tensor { Tensor.broadcasting(self, other, operation: "greater") { $0 > $1 ? 1 : 0 } }
    /// 1 where `self >= other`, else 0.
    public func isGreaterOrEqual(to other: Tensor) -> Tensor { Tensor.broadcasting(self, other, operation: "greaterEqual") { $0 >= $1 ? 1 : 0 } }
    /// 1 where `self < other`, else 0.
    public func isLess(than other: Tensor) -> Tensor { Tensor.broadcasting(self, other, operation: "less") { $0 < $1 ? 1 : 0 } }
    /// 1 where `self <= other`, else 0.
    public func isLessOrEqual(to other: Tensor) -> Tensor { Tensor.broadcasting(self, other, operation: "lessEqual") { $0 <= $1 ? 1 : 0 } }
    /// 1 where `self == other`, else 0.
    public func isEqual(to other: Tensor) -> Tensor { Tensor.broadcasting(self, other, operation: "equal") { $0 == $1 ? 1 : 0 } }

    /// `value` where `mask` is non-zero, else `self` (mask broadcast to this shape).
    /// The gradient flows to `self` where the mask is zero.
    public func maskedFill(where mask: Tensor, with value: Float) -> Tensor {
        precondition(ShapeMath.broadcast(shape, mask.shape) == shape,
                     "maskedFill: mask of shape \(mask.shape) does not broadcast to \(shape)")
        let keep = Tensor.broadcasting(self, mask, operation: "maskedFill") { _, m in m != 0 ? 0 : 1 }
        let x = self
        return Tensor.broadcasting(x, mask, operation: "maskedFill") { v, m in m != 0 ? value : v }
            .recorded(from: [x]) { g, _ in [Tensor.zipped(g, keep, *)] }
    }

    /// Fills future positions of the last two axes [.., T, S] with `value` (for causal attention).
    /// The T queries are the last T of the S positions (a KV cache holds the first S - T), so query i
    /// sees keys 0...(S - T + i).
    public func causallyMasked(with value: Float = -.infinity) -> Tensor {
        precondition(rank >= 2, "causallyMasked: needs rank ≥ 2, got shape \(shape)")
        precondition(shape[rank - 1] >= shape[rank - 2], "causallyMasked: \(shape) has more queries than keys")
        return maskedFill(where: Tensor.causalMask(rows: shape[rank - 2], columns: shape[rank - 1]), with: value)
    }

    /// [rows, columns] with 1 at future positions (j > i + columns - rows) and 0 elsewhere.
    public static func causalMask(rows: Int, columns: Int) -> Tensor {
        let mask = Tensor.zeros([rows, columns])
        let shift = columns - rows
        for i in 0..<rows { for j in Swift.max(0, i + shift + 1)..<Swift.max(columns, 0) { mask.pointer[i * columns + j] = 1 } }
        return mask
    }
}

/// Elementwise selection: `a` where `condition` is non-zero, else `b` (all three broadcast).
/// Gradients flow to `a` where the condition holds and to `b` elsewhere.
public func select(_ condition: Tensor, _ a: Tensor, _ b: Tensor) -> Tensor {
    guard let ab = ShapeMath.broadcast(a.shape, b.shape), let shape = ShapeMath.broadcast(ab, condition.shape) else {
        preconditionFailure("select: shapes \(condition.shape), \(a.shape), \(b.shape) are not broadcast-compatible")
    }
    let c = condition.broadcastCopy(to: shape), ea = a.broadcastCopy(to: shape), eb = b.broadcastCopy(to: shape)
    return Tensor.zipped(c, ea, eb) { $0 != 0 ? $1 : $2 }.recorded(from: [a, b]) { g, t in
        [t[0] ? Tensor.zipped(g, c) { $1 != 0 ? $0 : 0 }.summed(toShape: a.shape) : nil,
         t[1] ? Tensor.zipped(g, c) { $1 != 0 ? 0 : $0 }.summed(toShape: b.shape) : nil]
    }
}
