// GPT-2's pre-tokenizer, written out by hand: it splits text as the regular expression
//   's|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+
// does (alternatives tried in order at each position), over Unicode scalars.

public enum GPT2PreTokenizer {
    @inline(__always) static func isLetter(_ s: Unicode.Scalar) -> Bool {
        switch s.properties.generalCategory {
        case .uppercaseLetter, .lowercaseLetter, .titlecaseLetter, .modifierLetter, .otherLetter: true
        default: false
        }
    }

    @inline(__always) static func isNumber(_ s: Unicode.Scalar) -> Bool {
        switch s.properties.generalCategory {
        case .decimalNumber, .letterNumber, .otherNumber: true
        default: false
        }
    }

    @inline(__always) static func isSpace(_ s: Unicode.Scalar) -> Bool { s.properties.isWhitespace }

    @inline(__always) static func isOther(_ s: Unicode.Scalar) -> Bool { !isSpace(s) && !isLetter(s) && !isNumber(s) }

    /// The pieces of `text`, in order; their concatenation is `text`.
    public static func split(_ text: String) -> [Substring.UnicodeScalarView] {
        let scalars = text.unicodeScalars
        var pieces: [Substring.UnicodeScalarView] = []
        var i = scalars.startIndex
        let end = scalars.endIndex
        func run(from start: String.UnicodeScalarView.Index, while predicate: (Unicode.Scalar) -> Bool) -> String.UnicodeScalarView.Index {
            var j = start
            while j < end && predicate(scalars[j]) { j = scalars.index(after: j) }
            return j
        }
        while i < end {
            let c = scalars[i]
            let next = scalars.index(after: i)
            // Contractions: 's 't 're 've 'm 'll 'd
            if c == "'" && next < end {
                let n1 = scalars[next]
                let after = scalars.index(after: next)
                let n2: Unicode.Scalar? = after < end ? scalars[after] : nil
                if n1 == "s" || n1 == "t" || n1 == "m" || n1 == "d" {
                    pieces.append(scalars[i..<after]); i = after; continue
                }
                if let n2, (n1 == "r" && n2 == "e") || (n1 == "v" && n2 == "e") || (n1 == "l" && n2 == "l") {
                    let stop = scalars.index(after: after)
                    pieces.append(scalars[i..<stop]); i = stop; continue
                }
            }
            // ` ?\p{L}+`, ` ?\p{N}+`, ` ?[^\s\p{L}\p{N}]+`
            let body = c == " " && next < end ? next : i
            if body < end {
                let b = scalars[body]
                let classes: [(Unicode.Scalar) -> Bool] = [isLetter, isNumber, isOther]
                if let matching = classes.first(where: { $0(b) }), body != i || !isSpace(c) {
                    let stop = run(from: body, while: matching)
                    pieces.append(scalars[i..<stop]); i = stop; continue
                }
            }
            // `\s+(?!\S)` then `\s+`: a whitespace run; if a non-space follows, its last character is
            // left to start the next piece (unless the run is a single character).
            let stop = run(from: i, while: isSpace)
            if stop < end && scalars.distance(from: i, to: stop) > 1 {
                let last = scalars.index(before: stop)
                pieces.append(scalars[i..<last]); i = last
            } else {
                pieces.append(scalars[i..<stop]); i = stop
            }
        }
        return pieces
    }
}
