// The thread count and the parallel loop every kernel uses.
import Synchronization

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// How many threads AlignKit's kernels use.
///
/// The default is the machine's core count, or the `ALIGNKIT_THREADS` environment variable when
/// it is set to a positive integer. `alignkit --threads N` and `Parallel.threadCount = N` change it.
public enum Parallel {
    private static let storage = Atomic<Int>(Parallel.defaultThreadCount())

    /// The environment variable that sets the default thread count.
    public static let environmentVariable = "ALIGNKIT_THREADS"

    /// The number of threads kernels may use (at least 1).
    public static var threadCount: Int {
        get { storage.load(ordering: .relaxed) }
        set { storage.store(max(1, newValue), ordering: .relaxed) }
    }

    /// The machine's core count, or `ALIGNKIT_THREADS` when set.
    public static func defaultThreadCount() -> Int {
        if let text = getenv(environmentVariable), let value = Int(String(cString: text)), value > 0 {
            return value
        }
        return max(1, Int(sysconf(Int32(_SC_NPROCESSORS_ONLN))))
    }

    /// Runs `body(task)` for each task in `0..<taskCount`, spread over `threadCount` threads.
    /// Returns when every task is done.
    package static func forEach(_ taskCount: Int, maxThreads: Int = .max, _ body: (Int) -> Void) {
        let threads = min(threadCount, taskCount, maxThreads)
        if threads <= 1 {
            for task in 0..<taskCount { body(task) }
            return
        }
        ThreadPool.shared.run(taskCount: taskCount, threads: threads) { task, _ in body(task) }
    }

    /// Like `forEach`, also telling `body` which thread (0..<threadCount) runs the task, for
    /// per-thread scratch memory. Tasks go to whichever thread is free (dynamic balance).
    package static func forEachWithThread(_ taskCount: Int, maxThreads: Int = .max,
                                          _ body: (_ task: Int, _ thread: Int) -> Void) {
        let threads = min(threadCount, taskCount, maxThreads)
        if threads <= 1 {
            for task in 0..<taskCount { body(task, 0) }
            return
        }
        ThreadPool.shared.run(taskCount: taskCount, threads: threads, body)
    }

    /// Splits `0..<count` into at most `threadCount` contiguous chunks of at least `grain`
    /// elements and runs `body(range)` on each, in parallel when there is more than one.
    package static func forChunks(_ count: Int, grain: Int = 1 << 15, _ body: (Range<Int>) -> Void) {
        let chunks = min(threadCount, max(1, count / max(1, grain)))
        if chunks <= 1 {
            if count > 0 { body(0..<count) }
            return
        }
        forEach(chunks) { chunk in
            let start = count * chunk / chunks
            let end = count * (chunk + 1) / chunks
            body(start..<end)
        }
    }
}

/// Carries a value across threads where the caller guarantees exclusive or read-only use.
/// @unchecked Sendable: `Parallel.forEach` waits for every task before it returns, and tasks
/// write disjoint memory, so the wrapped closure and pointers are never used concurrently unsafely.
package struct UncheckedSendable<Value>: @unchecked Sendable {
    package let value: Value
    package init(_ value: Value) { self.value = value }
}
