// A persistent pool of worker threads for the kernels' parallel loops. Workers spin briefly
// after a job (back-to-back kernels start in microseconds), then sleep on a condition variable.
import CAlignKitKernels
import Synchronization

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// @unchecked Sendable: the mutable job fields are written only by the submitting thread while
/// no job is running (under `mutex`) and read by workers after they observe the new generation
/// under the same mutex; task indices and completion go through atomics.
final class ThreadPool: @unchecked Sendable {
    static let shared = ThreadPool()

    private let mutex = UnsafeMutablePointer<pthread_mutex_t>.allocate(capacity: 1)
    private let wake = UnsafeMutablePointer<pthread_cond_t>.allocate(capacity: 1)
    private let submitLock = Mutex(())
    private let generation = Atomic<Int>(0)
    private let nextTask = Atomic<Int>(0)
    private let unfinishedWorkers = Atomic<Int>(0)
    private var job: ((Int, Int) -> Void)?
    private var taskCount = 0
    private var participants = 0
    private var workers: [pthread_t] = []
    private let workersLock = Mutex(0)

    private init() {
        pthread_mutex_init(mutex, nil)
        pthread_cond_init(wake, nil)
    }

    /// Starts workers until there are `count`.
    private func ensureWorkers(_ count: Int) {
        workersLock.withLock { started in
            while started < count {
                let index = started
                let context = Unmanaged.passRetained(WorkerContext(pool: self, index: index)).toOpaque()
                var thread = pthread_t()
                let status = pthread_create(&thread, nil, { raw in
                    let context = Unmanaged<WorkerContext>.fromOpaque(raw!).takeRetainedValue()
                    context.pool.workerLoop(index: context.index)
                    return nil
                }, context)
                precondition(status == 0, "ThreadPool: pthread_create failed with \(status)")
                started += 1
            }
        }
    }

    /// Keeps worker i on core i (the submitting thread is left where the scheduler puts it), so
    /// that the scheduler does not stack two compute-bound workers on one core.
    private func pinToCore(_ core: Int) {
        let cores = Int(sysconf(Int32(_SC_NPROCESSORS_ONLN)))
        guard cores > 1 else { return }
        _ = ak_pin_current_thread(Int32(core % cores))
    }

    private final class WorkerContext {
        let pool: ThreadPool
        let index: Int
        init(pool: ThreadPool, index: Int) { self.pool = pool; self.index = index }
    }

    /// Runs `body(task, thread)` for every task in `0..<taskCount` on the caller (thread 0) and
    /// `threads - 1` workers (threads 1...); tasks go to whichever thread is free next.
    /// A call made while another job runs (nested, or from another thread) runs serially.
    func run(taskCount: Int, threads: Int, _ body: (Int, Int) -> Void) {
        let helpers = threads - 1
        ensureWorkers(helpers)
        let ran: Void? = submitLock.withLockIfAvailable { _ in
            withoutActuallyEscaping(body) { body in
                pthread_mutex_lock(mutex)
                job = body
                self.taskCount = taskCount
                participants = helpers
                nextTask.store(0, ordering: .relaxed)
                unfinishedWorkers.store(helpers, ordering: .relaxed)
                generation.wrappingAdd(1, ordering: .releasing)
                pthread_cond_broadcast(wake)
                pthread_mutex_unlock(mutex)

                runTasks(body, count: taskCount, thread: 0)
                // Wait until every helper has left the job before `body` goes out of scope.
                var spins = 0
                while unfinishedWorkers.load(ordering: .acquiring) > 0 {
                    spins += 1
                    if spins > 1_000 { sched_yield() }
                }
                pthread_mutex_lock(mutex)
                job = nil
                pthread_mutex_unlock(mutex)
            }
        }
        if ran == nil { for task in 0..<taskCount { body(task, 0) } }
    }

    private func runTasks(_ body: (Int, Int) -> Void, count: Int, thread: Int) {
        while true {
            let task = nextTask.wrappingAdd(1, ordering: .relaxed).oldValue
            if task >= count { return }
            body(task, thread)
        }
    }

    private func workerLoop(index: Int) {
        pinToCore(index + 1)
        var seen = 0
        while true {
            // Spin a little for the next job, then sleep.
            var spins = 0
            while generation.load(ordering: .acquiring) == seen && spins < 20_000 { spins += 1 }
            pthread_mutex_lock(mutex)
            while generation.load(ordering: .acquiring) == seen { pthread_cond_wait(wake, mutex) }
            seen = generation.load(ordering: .acquiring)
            let joins = index < participants
            pthread_mutex_unlock(mutex)
            guard joins else { continue }
            participate(thread: index + 1)
            // The job's closure is released by now: the submitter may return.
            unfinishedWorkers.wrappingSubtract(1, ordering: .releasing)
        }
    }

    /// Runs tasks of the current job; its closure reference ends with this call.
    @inline(never)
    private func participate(thread: Int) {
        pthread_mutex_lock(mutex)
        let body = job
        let count = taskCount
        pthread_mutex_unlock(mutex)
        if let body { runTasks(body, count: count, thread: thread) }
    }
}

