// LoRA: PEFT's adapter files load and give PEFT's logits; ours round-trip; fresh adapters start as the
// base; merging changes nothing; the adapted layer's gradients match finite differences.
import AlignKitModels
import AlignKitNN
import AlignKitTestSupport
import Foundation
import Testing

@Suite("LoRA")
struct LoRATests {
    static let base = fixtures.appendingPathComponent("llama-tiny")
    static let adapter = fixtures.appendingPathComponent("llama-tiny-lora")

    /// PEFT's adapter (scripts/make-lora-fixture.py) on the tiny Llama: logits within 1e-4 relative of
    /// PEFT's (float32 with different summation orders), adapted and merged alike.
    @Test func peftAdapterGivesPEFTsLogits() throws {
        var model = try GPT(contentsOf: Self.base)
        let settings = try model.loadAdapters(from: Self.adapter)
        #expect(settings.rank == 4 && settings.alpha == 8 && Set(settings.targets) == ["q_proj", "v_proj", "down_proj"])
        let expected = try SafeTensorsFile(contentsOf: Self.adapter.appendingPathComponent("expected.safetensors"))
        let tokens = try expected.tensor("tokens").scalars.map { Int($0) }
        let want = try expected.tensor("logits")
        let adapted = model.logits(tokens, batch: 2)
        #expect(relativeDifference(adapted, want) < 1e-4)
        let merged = model.mergingAdapters()
        #expect(merged.parameterNames.allSatisfy { !$0.contains("lora") })
        #expect(relativeDifference(merged.logits(tokens, batch: 2), want) < 1e-4)
        // Only the adapters are parameters: 2 layers × 3 projections × (A, B).
        #expect(model.parameterNames.count == 12 && model.parameterNames.allSatisfy { $0.contains("lora_") })
    }

    @Test func savedAdaptersRoundTripUnderPEFTsNames() throws {
        let out = try temporaryFolder("lora")
        defer { try? FileManager.default.removeItem(at: out) }
        var model = try GPT(contentsOf: Self.base)
        try model.addAdapters(LoRASettings(rank: 2, alpha: 4, dropout: 0, targets: ["k_proj", "o_proj", "gate_proj"]), seed: 3)
        // B starts at zero: the adapted model is the base. Give B values so the round trip means something.
        model.forEachParameter { p in if p.shape[0] == 2 { p = Tensor(randomNormal: p.shape, standardDeviation: 0.3, seed: 9) } }
        try model.saveAdapters(to: out, settings: LoRASettings(rank: 2, alpha: 4, dropout: 0, targets: ["k_proj", "o_proj", "gate_proj"]), baseModel: "llama-tiny")
        let file = try SafeTensorsFile(contentsOf: out.appendingPathComponent("adapter_model.safetensors"))
        #expect(file.names.contains("base_model.model.model.layers.1.mlp.gate_proj.lora_A.weight"))
        #expect(try file.tensor("base_model.model.model.layers.0.self_attn.o_proj.lora_B.weight").shape == [16, 2])
        var loaded = try GPT(contentsOf: Self.base)
        try loaded.loadAdapters(from: out)
        let tokens = [1, 5, 9, 30, 2, 7]
        #expect(loaded.logits(tokens).scalars == model.logits(tokens).scalars)
        #expect(relativeDifference(model.logits(tokens), try GPT(contentsOf: Self.base).logits(tokens)) > 1e-3)
    }

    @Test func freshAdaptersStartAsTheBase() throws {
        let base = try GPT(contentsOf: Self.base)
        var model = base
        try model.addAdapters(LoRASettings(rank: 4, alpha: 8, dropout: 0.1, targets: GPT.projectionNames(.llama)))
        let tokens = [3, 1, 4, 1, 5, 9, 2, 6]
        #expect(model.logits(tokens).scalars == base.logits(tokens).scalars)
        #expect(model.parameterNames.count == 2 * 7 * 2)
    }

    @Test func unknownTargetsAreNamed() throws {
        var gpt2 = try GPT(contentsOf: fixtures.appendingPathComponent("gpt2-tiny"))
        let error = #expect(throws: ConfigurationError.self) { try gpt2.addAdapters(LoRASettings(targets: ["c_attn"])) }
        #expect(error?.message.contains("separate layers") == true)
        var llama = try GPT(contentsOf: Self.base)
        #expect(throws: ConfigurationError.self) { try llama.addAdapters(LoRASettings(targets: ["qproj"])) }
    }

    @Test func adaptedLayerGradients() throws {
        let weight = Tensor(randomNormal: [5, 3], seed: 1)
        let failures = gradientMismatches([Tensor(randomNormal: [2, 4, 5], seed: 2), Tensor(randomNormal: [5, 2], seed: 3),
                                           Tensor(randomNormal: [2, 3], seed: 4)]) { xs in
            var layer = Linear(weight: weight, bias: Tensor([0.1, -0.2, 0.3]))
            layer.adapter = LowRankAdapter(a: xs[1], b: xs[2], alpha: 3)
            return (layer(xs[0]) * layer(xs[0])).sum()
        }
        #expect(failures.isEmpty, "\(failures.prefix(3))")
    }
}
