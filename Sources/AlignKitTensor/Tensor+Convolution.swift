// 2-D convolution (cross-correlation, as in deep-learning libraries) by im2col + GEMM, and
// max / average pooling. Layout NCHW: x [N, C, H, W], weight [O, C, KH, KW].
//   out[n, o, i, j] = bias[o] + Σ_{c,u,v} w[o, c, u, v] x[n, c, i·s + u - p, j·s + v - p]
//   Hout = (H + 2p - KH) / s + 1

extension Tensor {
    /// Output size of a sliding window.
    static func windowCount(_ size: Int, kernel: Int, stride: Int, padding: Int) -> Int {
        (size + 2 * padding - kernel) / stride + 1
    }
}

/// Unfolds one image [C, H, W] into columns [C·KH·KW, Hout·Wout] (zeros where padded).
private func im2col(_ x: UnsafePointer<Float>, c: Int, h: Int, w: Int, kh: Int, kw: Int, stride: Int, padding: Int,
                    ho: Int, wo: Int, into cols: UnsafeMutablePointer<Float>) {
    var row = 0
    for ch in 0..<c {
        for u in 0..<kh {
            for v in 0..<kw {
                let out = cols + row * ho * wo
                for i in 0..<ho {
                    let y = i * stride + u - padding
                    for j in 0..<wo {
                        let xx = j * stride + v - padding
                        out[i * wo + j] = (y >= 0 && y < h && xx >= 0 && xx < w) ? x[(ch * h + y) * w + xx] : 0
                    }
                }
                row += 1
            }
        }
    }
}

/// Folds columns back into an image, adding overlapping contributions (the adjoint of im2col).
private func col2im(_ cols: UnsafePointer<Float>, c: Int, h: Int, w: Int, kh: Int, kw: Int, stride: Int, padding: Int,
                    ho: Int, wo: Int, into x: UnsafeMutablePointer<Float>) {
    var row = 0
    for ch in 0..<c {
        for u in 0..<kh {
            for v in 0..<kw {
                let src = cols + row * ho * wo
                for i in 0..<ho {
                    let y = i * stride + u - padding
                    guard y >= 0 && y < h else { continue }
                    for j in 0..<wo {
                        let xx = j * stride + v - padding
                        if xx >= 0 && xx < w { x[(ch * h + y) * w + xx] += src[i * wo + j] }
                    }
                }
                row += 1
            }
        }
    }
}

/// 2-D convolution of `input` [N, C, H, W] with `filter` [O, C, KH, KW] (+ `bias` [O]).
/// Returns [N, O, Hout, Wout]. Gradients for input, filter and bias.
public func conv2D(_ input: Tensor, filter: Tensor, bias: Tensor? = nil, stride: Int = 1, padding: Int = 0) -> Tensor {
    precondition(input.rank == 4 && filter.rank == 4, "conv2D: input \(input.shape) and filter \(filter.shape) must be rank 4 (NCHW, OCKK)")
    let (n, c, h, w) = (input.shape[0], input.shape[1], input.shape[2], input.shape[3])
    let (o, fc, kh, kw) = (filter.shape[0], filter.shape[1], filter.shape[2], filter.shape[3])
    precondition(fc == c, "conv2D: input has \(c) channels \(input.shape), filter expects \(fc) \(filter.shape)")
    precondition(stride >= 1 && padding >= 0, "conv2D: stride \(stride) must be ≥ 1 and padding \(padding) ≥ 0")
    if let bias { precondition(bias.shape == [o], "conv2D: bias shape \(bias.shape) must be [\(o)]") }
    let ho = Tensor.windowCount(h, kernel: kh, stride: stride, padding: padding)
    let wo = Tensor.windowCount(w, kernel: kw, stride: stride, padding: padding)
    precondition(ho > 0 && wo > 0, "conv2D: kernel \(kh)x\(kw) larger than padded input \(h)x\(w)")
    let ckk = c * kh * kw, hw = ho * wo
    let result = Tensor(uninitializedShape: [n, o, ho, wo])
    let cols = Tensor(uninitializedShape: [n, ckk, hw])  // kept for the backward pass
    for b in 0..<n {
        im2col(input.pointer + b * c * h * w, c: c, h: h, w: w, kh: kh, kw: kw, stride: stride, padding: padding,
               ho: ho, wo: wo, into: cols.pointer + b * ckk * hw)
        GEMM.multiply(transposeA: false, transposeB: false, m: o, n: hw, k: ckk, a: filter.pointer, lda: ckk,
                      b: cols.pointer + b * ckk * hw, ldb: hw, c: result.pointer + b * o * hw, ldc: hw)
        if let bias {
            for oc in 0..<o {
                let row = result.pointer + (b * o + oc) * hw, value = bias.pointer[oc]
                for i in 0..<hw { row[i] += value }
            }
        }
    }
    var inputs = [input, filter]
    if let bias { inputs.append(bias) }
    return result.recorded(from: inputs) { g, t in
        var dInput: Tensor? = nil, dFilter: Tensor? = nil, dBias: Tensor? = nil
        if t[1] {
            let df = Tensor.zeros(filter.shape)
            for b in 0..<n {  // dW += G[b] (O x HW) · cols[b]ᵀ (HW x CKK)
                GEMM.multiply(transposeA: false, transposeB: true, m: o, n: ckk, k: hw, a: g.pointer + b * o * hw, lda: hw,
                              b: cols.pointer + b * ckk * hw, ldb: hw, c: df.pointer, ldc: ckk, accumulate: true)
            }
            dFilter = df
        }
        if t[0] {
            let dx = Tensor.zeros(input.shape)
            let dcols = Tensor(uninitializedShape: [ckk, hw])
            for b in 0..<n {  // dcols = Wᵀ (CKK x O) · G[b] (O x HW), folded back
                GEMM.multiply(transposeA: true, transposeB: false, m: ckk, n: hw, k: o, a: filter.pointer, lda: ckk,
                              b: g.pointer + b * o * hw, ldb: hw, c: dcols.pointer, ldc: hw)
                col2im(dcols.pointer, c: c, h: h, w: w, kh: kh, kw: kw, stride: stride, padding: padding,
                       ho: ho, wo: wo, into: dx.pointer + b * c * h * w)
            }
            dInput = dx
        }
        if t.count > 2 && t[2] { dBias = g.sum(alongAxes: [0, 2, 3]).reshaped(to: [o]) }
        return [dInput, dFilter, dBias]
    }
}

/// Max pooling over `size` x `size` windows of [N, C, H, W] with `stride` (default: size) and
/// zero-free `padding` (padded cells never win). The gradient goes to each window's first maximum.
public func maxPool2D(_ input: Tensor, size: Int, stride: Int? = nil, padding: Int = 0) -> Tensor {
    pool2D(input, size: size, stride: stride ?? size, padding: padding, isMax: true)
}

/// Average pooling over `size` x `size` windows (padded cells count as zeros, as PyTorch's default).
public func averagePool2D(_ input: Tensor, size: Int, stride: Int? = nil, padding: Int = 0) -> Tensor {
    pool2D(input, size: size, stride: stride ?? size, padding: padding, isMax: false)
}

private func pool2D(_ input: Tensor, size: Int, stride: Int, padding: Int, isMax: Bool) -> Tensor {
    let name = isMax ? "maxPool2D" : "averagePool2D"
    precondition(input.rank == 4, "\(name): input \(input.shape) must be rank 4 (NCHW)")
    precondition(size >= 1 && stride >= 1 && padding >= 0 && padding * 2 <= size,
                 "\(name): size \(size), stride \(stride), padding \(padding) are invalid")
    let (n, c, h, w) = (input.shape[0], input.shape[1], input.shape[2], input.shape[3])
    let ho = Tensor.windowCount(h, kernel: size, stride: stride, padding: padding)
    let wo = Tensor.windowCount(w, kernel: size, stride: stride, padding: padding)
    precondition(ho > 0 && wo > 0, "\(name): window \(size) larger than padded input \(h)x\(w)")
    let result = Tensor(uninitializedShape: [n, c, ho, wo])
    var winners = isMax ? [Int](repeating: 0, count: n * c * ho * wo) : []
    let scale = 1 / Float(size * size)
    for plane in 0..<(n * c) {
        let x = input.pointer + plane * h * w
        for i in 0..<ho {
            for j in 0..<wo {
                var best = -Float.infinity, bestIndex = -1, total: Float = 0
                for u in 0..<size {
                    let y = i * stride + u - padding
                    guard y >= 0 && y < h else { continue }
                    for v in 0..<size {
                        let xx = j * stride + v - padding
                        guard xx >= 0 && xx < w else { continue }
                        let value = x[y * w + xx]
                        total += value
                        if value > best || bestIndex < 0 { best = value; bestIndex = y * w + xx }
                    }
                }
                let out = (plane * ho + i) * wo + j
                if isMax { result.pointer[out] = best; winners[out] = bestIndex } else { result.pointer[out] = total * scale }
            }
        }
    }
    return result.recorded(from: [input]) { g, _ in
        let dx = Tensor.zeros(input.shape)
        for plane in 0..<(n * c) {
            let d = dx.pointer + plane * h * w
            for i in 0..<ho {
                for j in 0..<wo {
                    let out = (plane * ho + i) * wo + j
                    if isMax { d[winners[out]] += g.pointer[out]; continue }
                    for u in 0..<size {
                        let y = i * stride + u - padding
                        guard y >= 0 && y < h else { continue }
                        for v in 0..<size {
                            let xx = j * stride + v - padding
                            if xx >= 0 && xx < w { d[y * w + xx] += g.pointer[out] * scale }
                        }
                    }
                }
            }
        }
        return [dx]
    }
}

extension Tensor {
    /// Inverted dropout: each element is zeroed with `probability` and the rest scaled by
    /// 1 / (1 - probability), using `generator` (seeded: same seed, same mask).
    public func dropout(probability: Float, generator: inout RandomGenerator) -> Tensor {
        precondition(probability >= 0 && probability < 1, "dropout: probability \(probability) must be in [0, 1)")
        if probability == 0 { return self }
        let keepScale = 1 / (1 - probability)
        var mask = Tensor(uninitializedShape: shape)
        for i in 0..<scalarCount { mask.pointer[i] = generator.nextUniform() < probability ? 0 : keepScale }
        mask.node = nil
        return multiplying(mask)
    }
}
