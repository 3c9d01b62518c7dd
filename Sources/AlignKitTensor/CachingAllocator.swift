// A caching allocator for tensor buffers: freed buffers are kept in size-class free lists and
// handed out again, so repeated same-shaped work stops calling the system allocator.
import Synchronization

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Counters of the tensor buffer allocator, for benchmarks and tests.
public struct AllocatorStatistics: Sendable, Equatable {
    /// Buffers obtained from the system allocator since the process started.
    public var systemAllocations: Int
    /// Buffers served from the cache.
    public var cacheHits: Int
    /// Bytes currently held in the cache, free for reuse.
    public var cachedBytes: Int
    /// Bytes currently handed out to live tensors.
    public var liveBytes: Int
}

/// Tensor buffers come from here. Sizes are rounded up to a size class (four classes per power
/// of two, so at most 25% is wasted), and freed buffers wait in a free list per class.
/// The cache is bounded (`cacheLimitBytes`); past it, freed buffers go back to the system.
package final class CachingAllocator: Sendable {
    package static let shared = CachingAllocator()

    /// Buffers are aligned to 64 bytes (a cache line, one AVX-512 register).
    static let alignment = 64

    private struct State {
        var freeLists: [Int: [UInt]] = [:]  // size class -> addresses of free buffers
        var statistics = AllocatorStatistics(systemAllocations: 0, cacheHits: 0, cachedBytes: 0, liveBytes: 0)
        var cacheLimitBytes = 8 << 30
    }

    private let state = Mutex(State())

    /// The size class (bytes) that a request for `byteCount` bytes is served from.
    static func sizeClass(for byteCount: Int) -> Int {
        let bytes = max(byteCount, 64)
        if bytes <= 256 { return (bytes + 63) & ~63 }
        // Four classes per octave: 1, 1.25, 1.5, 1.75 times a power of two.
        let high = Int.bitWidth - 1 - (bytes - 1).leadingZeroBitCount  // floor(log2(bytes - 1))
        let step = 1 << (high - 2)
        return (bytes + step - 1) / step * step
    }

    package func allocate(floatCount: Int) -> UnsafeMutablePointer<Float> {
        let size = Self.sizeClass(for: floatCount * MemoryLayout<Float>.stride)
        let cached: UInt? = state.withLock { state in
            state.statistics.liveBytes += size
            if let address = state.freeLists[size]?.popLast() {
                state.statistics.cacheHits += 1
                state.statistics.cachedBytes -= size
                return address
            }
            state.statistics.systemAllocations += 1
            return nil
        }
        let raw = cached.flatMap { UnsafeMutableRawPointer(bitPattern: $0) } ?? {
            var pointer: UnsafeMutableRawPointer?
            let status = posix_memalign(&pointer, Self.alignment, size)
            precondition(status == 0 && pointer != nil, "CachingAllocator: out of memory allocating \(size) bytes")
            return pointer!
        }()
        return raw.bindMemory(to: Float.self, capacity: size / MemoryLayout<Float>.stride)
    }

    package func deallocate(_ pointer: UnsafeMutablePointer<Float>, floatCount: Int) {
        let size = Self.sizeClass(for: floatCount * MemoryLayout<Float>.stride)
        let raw = UnsafeMutableRawPointer(pointer)
        let address = UInt(bitPattern: raw)
        let keep = state.withLock { state -> Bool in
            state.statistics.liveBytes -= size
            guard state.statistics.cachedBytes + size <= state.cacheLimitBytes else { return false }
            state.freeLists[size, default: []].append(address)
            state.statistics.cachedBytes += size
            return true
        }
        if !keep { free(raw) }
    }

    package var statistics: AllocatorStatistics { state.withLock { $0.statistics } }

    /// Returns every cached buffer to the system.
    package func emptyCache() {
        let lists = state.withLock { state -> [[UInt]] in
            let lists = Array(state.freeLists.values)
            state.freeLists = [:]
            state.statistics.cachedBytes = 0
            return lists
        }
        for list in lists { for address in list { free(UnsafeMutableRawPointer(bitPattern: address)) } }
    }

    package func setCacheLimit(bytes: Int) { state.withLock { $0.cacheLimitBytes = bytes } }
}

/// Public window onto the tensor allocator.
public enum TensorMemory {
    /// Counters of the tensor buffer allocator.
    public static var statistics: AllocatorStatistics { CachingAllocator.shared.statistics }
    /// Frees every cached buffer.
    public static func emptyCache() { CachingAllocator.shared.emptyCache() }
    /// Bounds the bytes kept for reuse (default 8 GiB).
    public static func setCacheLimit(bytes: Int) { CachingAllocator.shared.setCacheLimit(bytes: bytes) }
}

/// The memory behind one or more tensors (reshapes share it). Owned by `Tensor`, copied on write.
final class TensorStorage {
    let base: UnsafeMutablePointer<Float>
    let count: Int

    init(count: Int) {
        self.count = count
        self.base = CachingAllocator.shared.allocate(floatCount: count)
    }

    /// Storage with every element set to zero.
    convenience init(zeros count: Int) {
        self.init(count: count)
        base.initialize(repeating: 0, count: count)
    }

    deinit { CachingAllocator.shared.deallocate(base, floatCount: count) }

    func copy() -> TensorStorage {
        let result = TensorStorage(count: count)
        result.base.update(from: base, count: count)
        return result
    }
}

extension TensorMemory {
    /// The size class (bytes) a request of `bytes` is served from; exposed for tests.
    public static func sizeClassForTesting(_ bytes: Int) -> Int { CachingAllocator.sizeClass(for: bytes) }
}
