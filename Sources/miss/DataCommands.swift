import ArgumentParser
import Foundation
import MISSCore
import MISSData

/// Errors from user input end the command with their message and a non-zero exit.
func runReportingInputErrors(_ body: () throws -> Void) throws {
    do {
        try body()
    } catch let e as InputError {
        FileHandle.standardError.write(Data("error: \(e.description)\n".utf8))
        throw ExitCode(2)
    }
}

func fileSize(_ url: URL) -> String {
    let bytes = (try? FileManager.default.attributesOfItem(atPath: url.path)[.size] as? Int) ?? 0
    return bytes >= 1 << 20 ? String(format: "%.1f MiB", Double(bytes) / 1_048_576) : String(format: "%.1f KiB", Double(bytes) / 1024)
}

func summarize(_ d: Dataset, wrote url: URL, seconds: Double) {
    let lengths = (0..<d.userCount).map { d.sequenceLength(of: $0) }.sorted()
    let median = lengths.isEmpty ? 0 : lengths[lengths.count / 2]
    print("wrote \(url.path) (\(fileSize(url))) in \(String(format: "%.2f", seconds)) s")
    print("  \(d.itemCount) items, \(d.userCount) users, \(d.behaviourCount) behaviours; sequence length median \(median), max \(lengths.last ?? 0)")
    print("  objectives: \(d.objectives.joined(separator: ", ")); modalities: \(d.modalities.map { "\($0.name) (\($0.dim))" }.joined(separator: ", ")); \(d.categoryNames.count) categories")
    if !d.itemAnnotations.isEmpty {
        let writers = d.annotationCounts(writtenBy: 0..<d.userCount).writers
        print("  \(d.itemAnnotations.count) tags by \(writers) users, kept apart from the item text: `miss embed` adds those of its split's training users")
    }
}

struct Synth: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Generate a synthetic short-video world (topic hierarchy, two content modalities, lifelong users).",
        discussion: "SampleData/world.missdata is made by: miss synth --seed 7 --items 8000 --users 800 --out SampleData/world.missdata"
    )

    @Option(help: "Random seed: the same seed and sizes give the same bytes.") var seed: UInt64 = 7
    @Option(help: "Number of items.") var items = 8_000
    @Option(help: "Number of users.") var users = 800
    @Option(help: "Shortest user sequence.") var minLength = 20
    @Option(help: "Longest user sequence.") var maxLength = 8_000
    @Flag(inversion: .prefixedNo, help: "Users' old interests come back after long gaps (--no-recurrence: the control, whose interests drift away for good).")
    var recurrence = true
    @Option(help: "Output dataset file (.missdata).") var out: String

    func validate() throws {
        guard items >= 2 else { throw ValidationError("--items must be at least 2, got \(items)") }
        guard users >= 1 else { throw ValidationError("--users must be at least 1, got \(users)") }
        guard minLength >= 2, maxLength >= minLength else {
            throw ValidationError("need 2 ≤ --min-length ≤ --max-length, got \(minLength) and \(maxLength)")
        }
    }

    func run() throws {
        var c = SyntheticWorld.Config()
        c.seed = seed; c.items = items; c.users = users; c.minLength = minLength; c.maxLength = maxLength
        c.recurrence = recurrence
        let t0 = Date()
        let bar = ProgressBar("synth", total: users, unit: "users")
        let (dataset, truth) = SyntheticWorld.generate(c) { done, _ in bar.update(done) }
        bar.finish()
        let url = URL(fileURLWithPath: out)
        try runReportingInputErrors {
            do { try dataset.write(to: url) } catch let e as AtomicWrite.Failure {
                throw InputError(file: out, problem: e.description, fix: "Choose another --out")
            }
        }
        summarize(dataset, wrote: url, seconds: Date().timeIntervalSince(t0))
        let r = SyntheticWorld.recurrence(in: dataset, truth: truth, gap: 200)
        print(String(format: "  interests: %.1f %% of behaviours follow one back after more than 200 behaviours away (%.1f %% are the first back); %.1f %% re-watch an item",
                     100 * r.returning, 100 * r.returns, 100 * r.reconsumption))
    }
}

struct Import: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Import a dataset into the binary .missdata format.",
        subcommands: [MovieLens.self, RecBole.self]
    )

    struct MovieLens: ParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "movielens",
            abstract: "Import a MovieLens CSV folder (movies.csv, ratings.csv, tags.csv).",
            discussion: "Item text is the title and genres; each tag is kept with the user who wrote it, and `miss embed` adds to the text the tags of its split's training users only.")

        @Argument(help: "The MovieLens folder, e.g. ../shared/datasets/ml-latest-small") var directory: String
        @Option(help: "Rating at or above which a movie is 'liked'.") var liked = 4.0
        @Option(help: "Rating at or above which a movie is 'loved'.") var loved = 4.5
        @Option(help: "Output dataset file.") var out: String

        func run() throws {
            try runReportingInputErrors {
                let t0 = Date()
                var o = MovieLensImporter.Options()
                o.likedThreshold = liked; o.lovedThreshold = loved
                let d = try MovieLensImporter.load(directory: URL(fileURLWithPath: directory), options: o)
                try d.validate(source: directory)
                let url = URL(fileURLWithPath: out)
                try d.write(to: url)
                summarize(d, wrote: url, seconds: Date().timeIntervalSince(t0))
            }
        }
    }

    struct RecBole: ParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "recbole",
            abstract: "Import RecBole atomic files (<base>.inter, optional <base>.item and <base>.user).")

        @Argument(help: "Path without extension, e.g. data/ml-100k/ml-100k") var base: String
        @Option(help: "User id field in .inter.") var userField = "user_id"
        @Option(help: "Item id field in .inter and .item.") var itemField = "item_id"
        @Option(help: "Time field in .inter ('none' to keep file order).") var timeField = "timestamp"
        @Option(help: "Label field that objectives threshold (e.g. rating).") var labelField: String?
        @Option(name: .customLong("objective"), help: "name:threshold, repeatable (e.g. liked:4); needs --label-field.")
        var objectives: [String] = []
        @Option(help: "Comma-separated .item fields that form the text.") var textFields: String?
        @Option(help: ".item field whose first token is the category.") var categoryField: String?
        @Option(help: ArgumentHelp("Comma-separated .item fields (token, token_seq, float or float_seq) that form the content modality 'fields'.",
                                   discussion: "Tokens become a multi-hot over the field's vocabulary; numbers are standardised over the items that have them (an empty field is 0, the mean). A float field named here leaves the 'features' modality."))
        var modalityFields: String?
        @Flag(help: "Skip users in .user that have no interactions instead of failing.") var dropInactiveUsers = false
        @Option(help: "Output dataset file.") var out: String

        func run() throws {
            var o = RecBoleImporter.Options()
            o.userField = userField; o.itemField = itemField
            o.timeField = timeField == "none" ? nil : timeField
            o.labelField = labelField
            if !objectives.isEmpty {
                o.objectives = try objectives.map { spec in
                    let parts = spec.split(separator: ":")
                    guard parts.count == 2, let t = Double(parts[1]) else {
                        throw ValidationError("--objective '\(spec)' is not name:threshold (e.g. liked:4)")
                    }
                    return (String(parts[0]), t)
                }
            } else if labelField != nil {
                o.objectives = [("rated", -Double.infinity)]
            }
            o.textFields = textFields?.split(separator: ",").map(String.init)
            o.categoryField = categoryField
            if let modalityFields {
                o.modalityFields = modalityFields.split(separator: ",", omittingEmptySubsequences: false).map { $0.trimmingCharacters(in: .whitespaces) }
                guard !o.modalityFields.isEmpty, !o.modalityFields.contains("") else {
                    throw ValidationError("--modality-fields '\(modalityFields)' is not a comma-separated list of .item field names (e.g. genre,year)")
                }
            }
            o.dropInactiveUsers = dropInactiveUsers
            try runReportingInputErrors {
                let t0 = Date()
                let d = try RecBoleImporter.load(base: URL(fileURLWithPath: base), options: o)
                try d.validate(source: base + ".inter")
                let url = URL(fileURLWithPath: out)
                try d.write(to: url)
                summarize(d, wrote: url, seconds: Date().timeIntervalSince(t0))
            }
        }
    }
}
