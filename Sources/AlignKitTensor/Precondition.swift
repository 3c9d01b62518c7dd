// Programmer-error checks whose message survives optimized builds.
//
// The standard library's `precondition` drops its message under -O, so a user running a release
// build would see a bare trap instead of "matmul: inner sizes differ: [2, 3] · [4, 5]". This
// version shadows it inside the package: the condition is inlined, the message is built only on
// failure, and it goes through `fatalError`, which prints in every build configuration.

@inline(__always)
package func precondition(_ condition: @autoclosure () -> Bool, _ message: @autoclosure () -> String = "",
                          file: StaticString = #fileID, line: UInt = #line) {
    if _slowPath(!condition()) { failPrecondition(message(), file: file, line: line) }
}

@inline(__always)
package func preconditionFailure(_ message: @autoclosure () -> String = "", file: StaticString = #fileID, line: UInt = #line) -> Never {
    failPrecondition(message(), file: file, line: line)
}

@inline(never)
package func failPrecondition(_ message: String, file: StaticString, line: UInt) -> Never {
    fatalError(message, file: file, line: line)
}
