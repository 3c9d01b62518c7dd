// Every differentiable operation against finite differences, on shapes that broadcast.
import AlignKitTensor
import AlignKitTestSupport
import Testing

struct GradientCase: Sendable, CustomTestStringConvertible {
    let name: String
    let shapes: [[Int]]
    let kind: InputKind
    let f: @Sendable ([Tensor]) -> Tensor
    init(_ name: String, _ shapes: [[Int]], _ kind: InputKind = .any, _ f: @escaping @Sendable ([Tensor]) -> Tensor) {
        self.name = name; self.shapes = shapes; self.kind = kind; self.f = f
    }
    var testDescription: String { name }
}

let elementwiseCases: [GradientCase] = [
    GradientCase("add broadcast [2,3,4]+[4]", [[2, 3, 4], [4]]) { $0[0] + $0[1] },
    GradientCase("add broadcast [3,1]+[1,4]", [[3, 1], [1, 4]]) { $0[0] + $0[1] },
    GradientCase("sub broadcast [2,3,1]-[3,4]", [[2, 3, 1], [3, 4]]) { $0[0] - $0[1] },
    GradientCase("mul broadcast [3,4]*[2,1,4]", [[3, 4], [2, 1, 4]]) { $0[0] * $0[1] },
    GradientCase("mul by scalar tensor", [[2, 3], []]) { $0[0] * $0[1] },
    GradientCase("div broadcast [2,3]/[3]", [[2, 3], [3]], .positive) { $0[0] / $0[1] },
    GradientCase("scalar arithmetic", [[2, 3]], .positive) { xs in (2 - xs[0] * 3 + 1) / 4 + 1 / xs[0] },
    GradientCase("neg", [[5]]) { -$0[0] },
    GradientCase("exp", [[2, 3]]) { $0[0].exp() },
    GradientCase("log", [[2, 3]], .positive) { $0[0].log() },
    GradientCase("sqrt", [[2, 3]], .positive) { $0[0].squareRoot() },
    GradientCase("pow constant 3", [[2, 3]]) { $0[0].raised(toPower: 3) },
    GradientCase("pow constant 2", [[2, 3]]) { $0[0].raised(toPower: 2) },
    GradientCase("pow constant -1.5", [[2, 3]], .positive) { $0[0].raised(toPower: -1.5) },
    GradientCase("pow tensor broadcast", [[2, 3], [3]], .positive) { $0[0].raised(toPower: $0[1]) },
    GradientCase("abs", [[3, 4]], .distinct) { $0[0].absoluteValue() },
    GradientCase("maximum broadcast", [[3, 4], [4]], .distinct) { $0[0].maximum($0[1].addingScalar(0.05)) },
    GradientCase("minimum broadcast", [[3, 4], [3, 1]], .distinct) { $0[0].minimum($0[1]) },  // the two grids differ by 0.05: no ties
    GradientCase("clamp", [[4, 5]], .distinct) { $0[0].clamped(lower: -0.47, upper: 0.53) },
    GradientCase("sigmoid", [[2, 5]]) { $0[0].sigmoid() },
    GradientCase("tanh", [[2, 5]]) { $0[0].tanh() },
    GradientCase("relu", [[3, 4]], .distinct) { $0[0].relu() },
    GradientCase("gelu exact", [[2, 5]]) { $0[0].gelu() },
    GradientCase("gelu tanh", [[2, 5]]) { $0[0].geluTanh() },
    GradientCase("silu", [[2, 5]]) { $0[0].silu() },
    GradientCase("softplus", [[2, 5]]) { ($0[0] * 4).softplus() },
    GradientCase("log-sigmoid", [[2, 5]]) { ($0[0] * 4).logSigmoid() },
    GradientCase("select broadcast", [[2, 3], [3]]) { xs in
        select(Tensor([1, 0, 1, 0, 0, 1], shape: [2, 3]), xs[0], xs[1])
    },
    GradientCase("masked fill", [[2, 3, 3]]) { $0[0].maskedFill(where: Tensor([0, 1, 0, 1, 0, 0, 0, 0, 1], shape: [3, 3]), with: -5) },
    GradientCase("causal mask then softmax", [[2, 4, 4]]) { $0[0].causallyMasked().softmax() },
    GradientCase("used twice accumulates", [[3]]) { xs in xs[0] * xs[0] + xs[0] },
]

let reductionCases: [GradientCase] = [
    GradientCase("sum axis 1", [[2, 3, 4]]) { $0[0].sum(alongAxes: [1]) },
    GradientCase("sum axes 0,2", [[2, 3, 4]]) { $0[0].sum(alongAxes: [0, 2]) },
    GradientCase("sum squeezing -1", [[2, 3, 4]]) { $0[0].sum(squeezingAxes: [-1]) },
    GradientCase("sum all", [[2, 3]]) { $0[0].sum() },
    GradientCase("mean axis 0", [[4, 3]]) { $0[0].mean(alongAxes: [0]) },
    GradientCase("mean all", [[4, 3]]) { $0[0].mean() },
    GradientCase("max axis 1", [[3, 5, 2]], .distinct) { $0[0].max(alongAxes: [1]) },
    GradientCase("max all", [[3, 4]], .distinct) { $0[0].max() },
    GradientCase("min axis 0", [[3, 4]], .distinct) { $0[0].min(alongAxes: [0]) },
    GradientCase("logsumexp axis -1", [[3, 5]]) { ($0[0] * 3).logSumExp(alongAxes: [-1]) },
    GradientCase("logsumexp axes 0,1", [[2, 3, 2]]) { $0[0].logSumExp(alongAxes: [0, 1]) },
    GradientCase("variance axis 1", [[3, 6]]) { $0[0].variance(alongAxes: [1]) },
    GradientCase("variance unbiased all", [[3, 4]]) { $0[0].variance(unbiased: true) },
]

let movementCases: [GradientCase] = [
    GradientCase("reshape", [[2, 6]]) { $0[0].reshaped(to: [3, -1]) * Tensor(rangeFrom: 0, to: 4) },
    GradientCase("permute", [[2, 3, 4]]) { $0[0].transposed(permutation: [2, 0, 1]) },
    GradientCase("transpose last two", [[2, 3, 4]]) { $0[0].transposed() },
    GradientCase("slice axis 1", [[3, 5, 2]]) { $0[0].slice(alongAxis: 1, range: 1..<4) },
    GradientCase("concatenate axis 1", [[2, 3], [2, 1], [2, 2]]) { concatenate($0, alongAxis: 1) },
    GradientCase("stack axis 1", [[2, 3], [2, 3]]) { stack($0, alongAxis: 1) },
    GradientCase("split", [[2, 6]]) { xs in
        let parts = xs[0].split(sizes: [2, 4], alongAxis: 1)
        return parts[0].sum(alongAxes: [1]) * parts[1]
    },
    GradientCase("gather rows with repeats", [[4, 3]]) { $0[0].gathering(atIndices: [2, 0, 2, 3], alongAxis: 0) },
    GradientCase("gather axis 1", [[2, 4, 3]]) { $0[0].gathering(atIndices: [3, 1], alongAxis: 1) },
    GradientCase("take along last axis", [[3, 5]]) { $0[0].gathering(alongAxis: 1, indices: [4, 0, 2]) },
    GradientCase("expand", [[3, 1]]) { $0[0].expanded(to: [2, 3, 4]) },
    GradientCase("squeeze and unsqueeze", [[3, 1, 2]]) { $0[0].squeezingShape(at: 1).expandingShape(at: 0) },
]

let fusedCases: [GradientCase] = [
    GradientCase("log-softmax gather (one row masked)", [[4, 6]]) { ($0[0] * 2).logSoftmaxGathering(labels: [5, 0, -1, 2]) },
    // The backward pass writes the gradient over the logits only when nothing else holds them: here
    // the product's pullback still needs them.
    GradientCase("log-softmax gather of logits used again", [[3, 5]]) { xs in
        let logits = xs[0] * 2
        return logits.logSoftmaxGathering(labels: [4, 0, 2]) + (logits * logits).sum(alongAxes: [1]).reshaped(to: [3])
    },
    GradientCase("swiglu", [[2, 5], [2, 5]]) { Tensor.swiglu($0[0] * 2, $0[1]) },
    GradientCase("rms norm", [[3, 6], [6]]) { $0[0].rmsNormalized(scale: $0[1], epsilon: 1e-5) },
    GradientCase("layer norm", [[2, 2, 5], [5], [5]]) { $0[0].layerNormalized(scale: $0[1], offset: $0[2], epsilon: 1e-5) },
    // Rows wider than the kernels' 16 lanes, with a remainder (37 = 2·16 + 5).
    GradientCase("rms norm, 37 wide", [[2, 37], [37]]) { $0[0].rmsNormalized(scale: $0[1], epsilon: 1e-5) },
    GradientCase("layer norm, 37 wide", [[3, 37], [37], [37]]) { $0[0].layerNormalized(scale: $0[1], offset: $0[2], epsilon: 1e-5) },
    GradientCase("causal attention T = S", [[1, 2, 4, 3], [1, 2, 4, 3], [1, 2, 4, 3]]) {
        causalAttention(query: $0[0], key: $0[1], value: $0[2], scale: 0.7)
    },
    GradientCase("causal attention with 2 cached positions", [[2, 1, 3, 4], [2, 1, 5, 4], [2, 1, 5, 4]]) {
        causalAttention(query: $0[0], key: $0[1], value: $0[2], scale: 0.5)
    },
    // Batch element 1's keys start at 3: its first query row (sees keys 0...2) is a padding row.
    GradientCase("causal attention with left padding", [[2, 2, 3, 4], [2, 2, 5, 4], [2, 2, 5, 4]]) {
        causalAttention(query: $0[0], key: $0[1], value: $0[2], scale: 0.5, firstKeys: [1, 3])
    },
    // Two prefixes of 3 rows (the second left-padded by one), two copies of continuations of 2 rows:
    // 6 + 8 = 14 rows; 2 query heads share 1 key/value head of size 2.
    GradientCase("shared-prefix attention", [[14, 4], [14, 2], [14, 2]]) {
        sharedPrefixAttention(query: $0[0], key: $0[1], value: $0[2],
                              shape: SharedPrefixShape(prefixes: 2, prefixWidth: 3, starts: [0, 1], copies: 2, width: 2),
                              headSize: 2, scale: 0.6)
    },
    GradientCase("shared-prefix attention, one head per key/value head", [[7, 6], [7, 6], [7, 6]]) {
        sharedPrefixAttention(query: $0[0], key: $0[1], value: $0[2],
                              shape: SharedPrefixShape(prefixes: 1, prefixWidth: 3, starts: [2], copies: 2, width: 2),
                              headSize: 3, scale: 0.5)
    },
    // Q, K and V side by side in one [14, (2 + 2·1)·2] matrix, as the fused projection writes them.
    GradientCase("shared-prefix attention, packed Q K V", [[14, 8]]) {
        sharedPrefixAttention(packed: $0[0], queryHeads: 2, kvHeads: 1,
                              shape: SharedPrefixShape(prefixes: 2, prefixWidth: 3, starts: [0, 1], copies: 2, width: 2),
                              headSize: 2, scale: 0.6)
    },
]

let linearAlgebraCases: [GradientCase] = [
    GradientCase("matmul", [[3, 4], [4, 5]]) { matmul($0[0], $0[1]) },
    GradientCase("matmul Aᵀ", [[4, 3], [4, 5]]) { matmul($0[0], $0[1], transposeA: true) },
    GradientCase("matmul Bᵀ", [[3, 4], [5, 4]]) { matmul($0[0], $0[1], transposeB: true) },
    GradientCase("matmul AᵀBᵀ", [[4, 3], [5, 4]]) { matmul($0[0], $0[1], transposeA: true, transposeB: true) },
    GradientCase("matmul batched", [[2, 3, 4], [2, 4, 5]]) { matmul($0[0], $0[1]) },
    GradientCase("matmul batched AᵀBᵀ", [[2, 4, 3], [2, 5, 4]]) { matmul($0[0], $0[1], transposeA: true, transposeB: true) },
    GradientCase("matmul folded batch x matrix", [[2, 3, 4], [4, 5]]) { matmul($0[0], $0[1]) },
    GradientCase("matmul batch Aᵀ x matrix", [[2, 4, 3], [4, 5]]) { matmul($0[0], $0[1], transposeA: true) },
    GradientCase("matmul matrix x batch", [[3, 4], [2, 4, 5]]) { matmul($0[0], $0[1]) },
    GradientCase("linear (bias in the product's store)", [[2, 3, 4], [4, 5], [5]]) { linear($0[0], $0[1], bias: $0[2]) },
    GradientCase("softmax last axis", [[3, 5]]) { ($0[0] * 2).softmax() },
    GradientCase("softmax axis 0", [[4, 3]]) { $0[0].softmax(alongAxis: 0) },
    GradientCase("log-softmax last axis", [[3, 5]]) { ($0[0] * 2).logSoftmax() },
    GradientCase("log-softmax axis 1 of 3", [[2, 4, 3]]) { $0[0].logSoftmax(alongAxis: 1) },
    GradientCase("conv2d stride 1", [[2, 2, 5, 5], [3, 2, 3, 3], [3]]) { conv2D($0[0], filter: $0[1], bias: $0[2]) },
    GradientCase("conv2d stride 2 pad 1", [[1, 2, 6, 5], [2, 2, 3, 3]]) { conv2D($0[0], filter: $0[1], stride: 2, padding: 1) },
    GradientCase("max pool 2x2", [[2, 2, 4, 4]], .distinct) { maxPool2D($0[0], size: 2) },
    GradientCase("max pool 3 stride 2 pad 1", [[1, 2, 5, 5]], .distinct) { maxPool2D($0[0], size: 3, stride: 2, padding: 1) },
    GradientCase("average pool 2x2", [[2, 2, 4, 4]]) { averagePool2D($0[0], size: 2) },
    GradientCase("average pool 3 stride 2 pad 1", [[1, 1, 5, 5]]) { averagePool2D($0[0], size: 3, stride: 2, padding: 1) },
    GradientCase("dropout (seeded mask)", [[4, 5]]) { xs in
        var generator = RandomGenerator(seed: 7)
        return xs[0].dropout(probability: 0.3, generator: &generator)
    },
]

@Suite("Finite-difference gradients")
struct GradientTests {
    func check(_ c: GradientCase) {
        let inputs = c.shapes.enumerated().map { makeInput($0.element, c.kind, seed: UInt64(10 + $0.offset)) }
        let failures = gradientMismatches(inputs, c.f)
        #expect(failures.isEmpty, "\(c.name): \(failures.prefix(3))")
    }

    @Test(arguments: elementwiseCases) func elementwise(_ c: GradientCase) { check(c) }
    @Test(arguments: reductionCases) func reductions(_ c: GradientCase) { check(c) }
    @Test(arguments: movementCases) func movement(_ c: GradientCase) { check(c) }
    @Test(arguments: linearAlgebraCases) func linearAlgebra(_ c: GradientCase) { check(c) }
    @Test(arguments: fusedCases) func fused(_ c: GradientCase) { check(c) }

    @Test func checkerCatchesAWrongDerivative() {
        // `x·0.1 - detached(x·0.1)` is zero in value but has gradient 0.1: the analytic gradient of
        // this function is off by 0.1 from the numeric one, and the checker must say so.
        let x = makeInput([4], .any, seed: 3)
        let wrong = gradientMismatches([x]) { xs in xs[0].exp() + (xs[0] * 0.1 - (xs[0] * 0.1).detached()) }
        #expect(wrong.count == 4)
        let right = gradientMismatches([x]) { xs in xs[0].exp() }
        #expect(right.isEmpty)
    }
}

@Suite("Fused primitives equal their compositions")
struct FusedValueTests {
    @Test func fusedOpsEqualTheUnfusedGraph() {
        let x = Tensor(randomNormal: [2, 3, 5, 4], seed: 1), k = Tensor(randomNormal: [2, 3, 7, 4], seed: 2), v = Tensor(randomNormal: [2, 3, 7, 4], seed: 3)
        let fused = causalAttention(query: x, key: k, value: v, scale: 0.5)
        let plain = matmul((matmul(x, k, transposeB: true) * 0.5).causallyMasked().softmax(), v)
        #expect(zip(fused.scalars, plain.scalars).allSatisfy { abs($0 - $1) < 1e-5 })
        // Left padding: keys before each element's first are masked (−∞ before the softmax).
        let padded = causalAttention(query: x, key: k, value: v, scale: 0.5, firstKeys: [0, 2])
        let mask = Tensor((0..<2).flatMap { b in (0..<7).map { j in b == 1 && j < 2 ? -Float.infinity : 0 } }, shape: [2, 1, 1, 7])
        let plainPadded = matmul(((matmul(x, k, transposeB: true) * 0.5).causallyMasked() + mask).softmax(), v)
        #expect(zip(padded.scalars, plainPadded.scalars).allSatisfy { abs($0 - $1) < 1e-5 })
        let logits = Tensor(randomNormal: [6, 9], seed: 4) * 3
        let gathered = logits.logSoftmaxGathering(labels: [0, 8, 3, 3, 1, 7])
        let reference = logits.logSoftmax().gathering(alongAxis: 1, indices: [0, 8, 3, 3, 1, 7])
        #expect(zip(gathered.scalars, reference.scalars).allSatisfy { abs($0 - $1) < 1e-5 })
        // Norms: rows narrower and wider than the kernels' 16 lanes (37 = 2·16 + 5).
        for width in [4, 37] {
            let w = Tensor(randomNormal: [width], seed: 5), b = Tensor(randomNormal: [width], seed: 6)
            let rows = Tensor(randomNormal: [3, width], seed: 7) * 2 + 1
            let rms = rows.rmsNormalized(scale: w, epsilon: 1e-6)
            let rmsPlain = rows / (rows * rows).mean(alongAxes: [-1]).addingScalar(1e-6).squareRoot() * w
            #expect(zip(rms.scalars, rmsPlain.scalars).allSatisfy { abs($0 - $1) < 1e-5 })
            let ln = rows.layerNormalized(scale: w, offset: b, epsilon: 1e-5)
            let centered = rows - rows.mean(alongAxes: [-1])
            let lnPlain = centered / (centered * centered).mean(alongAxes: [-1]).addingScalar(1e-5).squareRoot() * w + b
            #expect(zip(ln.scalars, lnPlain.scalars).allSatisfy { abs($0 - $1) < 1e-5 })
        }
        let w = Tensor(randomNormal: [4], seed: 5)
        let rows = Tensor(randomNormal: [3, 4], seed: 7) * 2 + 1
        let swiglu = Tensor.swiglu(rows, w.expandingShape(at: 0) + rows)
        #expect(zip(swiglu.scalars, (rows.silu() * (w.expandingShape(at: 0) + rows)).scalars).allSatisfy { abs($0 - $1) < 1e-5 })
    }

    /// Each packed sequence equals plain causal attention over its own keys (its prefix's, then its own),
    /// values and gradients, at sizes where the products take GEMM's packed path: short sequences, and long
    /// ones (150- and 80-row parts: 11 and 6 panels of 14 rows whose causal products stop at each panel's last
    /// row, the last panel partial; under bf16 on AMX, three and two blocks of 64; no block of at most 8 rows,
    /// which the skinny kernels would sum in another order than the reference).
    /// Under bf16 the pool's threads must run the products in bf16 too (the precision is a task-local
    /// setting of the caller).
    @Test(arguments: [(3, 20, [0, 5, 19], 2, 12, 4, 2), (2, 150, [0, 37], 1, 80, 2, 1)])
    func sharedPrefixAttentionEqualsEachSequenceAlone(_ sizes: (Int, Int, [Int], Int, Int, Int, Int)) {
        let (n, p, starts, copies, t, h, kv) = sizes
        let d = 8
        let shape = SharedPrefixShape(prefixes: n, prefixWidth: p, starts: starts, copies: copies, width: t)
        let r = shape.rowCount
        let q = Tensor(randomNormal: [r, h * d], seed: 11), k = Tensor(randomNormal: [r, kv * d], seed: 12), v = Tensor(randomNormal: [r, kv * d], seed: 13)
        func heads(_ x: Tensor, _ rows: [Int], _ count: Int) -> Tensor {
            let y = x.gathering(atIndices: rows).reshaped(to: [1, rows.count, count, d]).transposed(permutation: [0, 2, 1, 3])
            guard count == kv else { return y }
            return y.expandingShape(at: 2).expanded(to: [1, kv, h / kv, rows.count, d]).reshaped(to: [1, h, rows.count, d])
        }
        /// Every row of the plain computation, in packed order (the sequences' rows follow one another).
        func reference(_ q: Tensor, _ k: Tensor, _ v: Tensor) -> Tensor {
            var pieces: [Tensor] = []
            for sequence in 0..<(n + copies * n) {
                let i = sequence % n
                let prefixRows = Array((i * p)..<((i + 1) * p))
                let own = sequence < n ? [] : Array((n * p + (sequence - n) * t)..<(n * p + (sequence - n + 1) * t))
                let queryRows = sequence < n ? prefixRows : own
                let y = causalAttention(query: heads(q, queryRows, h), key: heads(k, prefixRows + own, kv), value: heads(v, prefixRows + own, kv),
                                        scale: 0.35, firstKeys: [shape.starts[i]])
                pieces.append(y.transposed(permutation: [0, 2, 1, 3]).reshaped(to: [queryRows.count, h * d]))
            }
            return concatenate(pieces, alongAxis: 0)
        }
        func attention(_ x: [Tensor]) -> Tensor { sharedPrefixAttention(query: x[0], key: x[1], value: x[2], shape: shape, headSize: d, scale: 0.35) }
        func largestDifference(_ a: [Float], _ b: [Float]) -> Float { zip(a, b).map { abs($0 - $1) }.max()! }
        let cotangent = Tensor(randomNormal: [r, h * d], seed: 14)
        let (fused, fusedGradients) = valueWithGradient(at: [q, k, v]) { (attention($0) * cotangent).sum() }
        let (plain, plainGradients) = valueWithGradient(at: [q, k, v]) { (reference($0[0], $0[1], $0[2]) * cotangent).sum() }
        // Outputs are averages of unit normals: fp32 reordering stays near 1e-6.
        #expect(largestDifference(attention([q, k, v]).scalars, reference(q, k, v).scalars) < 1e-5)
        // The loss sums r·H·D such outputs, and gradient entries sum up to a few hundred products of unit
        // normals: reordering reaches a few 1e-6 relative to their size (tens).
        #expect(abs(fused.scalars[0] - plain.scalars[0]) < 1e-3)
        for (a, b) in zip(fusedGradients, plainGradients) { #expect(largestDifference(a.scalars, b.scalars) < 1e-4) }
        let (fusedBF16, plainBF16) = GEMM.withPrecision(.bf16) { (attention([q, k, v]).scalars, reference(q, k, v).scalars) }
        // The same rounded operands summed in another order agree to ~1e-5; fp32 products differ from
        // bf16 ones by ~1e-2 (8 significant bits), so a thread left in fp32 would show.
        #expect(largestDifference(fusedBF16, plainBF16) < 1e-4)
        #expect(largestDifference(attention([q, k, v]).scalars, plainBF16) > 1e-3)
        // Packed side by side, the same products on the same values: equal to the last bit, gradients too.
        let (together, packedGradient) = valueWithGradient(at: concatenate([q, k, v], alongAxis: 1)) {
            (sharedPrefixAttention(packed: $0, queryHeads: h, kvHeads: kv, shape: shape, headSize: d, scale: 0.35) * cotangent).sum()
        }
        #expect(fused.scalars == together.scalars)
        #expect(concatenate(fusedGradients, alongAxis: 1).scalars == packedGradient.scalars)
    }
}
