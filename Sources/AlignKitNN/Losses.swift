// Loss functions, each returning a scalar tensor (the mean over the batch).

/// Mean squared error: mean((prediction - target)²).
public func meanSquaredError(_ prediction: Tensor, _ target: Tensor) -> Tensor {
    (prediction - target).raised(toPower: 2).mean()
}

/// Binary cross-entropy from logits z and labels y ∈ {0, 1}, stable for large |z|:
/// -[y log σ(z) + (1 - y) log σ(-z)], averaged.
public func binaryCrossEntropy(logits: Tensor, labels: Tensor) -> Tensor {
    precondition(logits.shape == labels.shape, "binaryCrossEntropy: logits \(logits.shape) and labels \(labels.shape) differ")
    return -(labels * logits.logSigmoid() + (1 - labels) * (-logits).logSigmoid()).mean()
}

/// Cross-entropy of logits [N, C] against class indices (N of them), averaged: -mean log softmax(z)[y].
public func crossEntropy(logits: Tensor, labels: [Int]) -> Tensor {
    precondition(logits.rank == 2 && logits.shape[0] == labels.count,
                 "crossEntropy: logits \(logits.shape) need [N, C] with N = \(labels.count) labels")
    return -logits.logSoftmax().gathering(alongAxis: 1, indices: labels).mean()
}
