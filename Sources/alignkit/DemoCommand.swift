import AlignKit
import ArgumentParser

struct DemoCommand: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "demo", abstract: "Run the end-to-end demo.")
    @OptionGroup var global: GlobalOptions
    func run() throws { global.apply(); print("demo: coming soon") }
}
