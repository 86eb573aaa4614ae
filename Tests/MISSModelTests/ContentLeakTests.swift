import Foundation
import Testing
import MISSTestSupport
import MISSCore
import MISSData
import MISSModel

/// An evaluation user's tag can name what that user watches next; it must not reach the content
/// features that `miss embed` aligns, while a training user's tag does.
@Suite struct ContentLeakTests {
    static let splitSeed: UInt64 = 1

    /// A MovieLens folder: 8 movies, 20 users with 5 ratings each (so the split has 2 validation and 2 test users).
    func movieLens(tags: [(user: Int, movie: Int, tag: String)]) throws -> URL {
        let dir = try temporaryDirectory("leak-\(tags.map(\.tag).joined(separator: "-"))")
        let genres = ["Action", "Comedy", "Drama", "Horror"]
        let movies = (1...8).map { "\($0),Movie number \($0) (199\($0)),\(genres[$0 % 4])|\(genres[($0 + 1) % 4])" }
        var ratings: [String] = []
        for u in 1...20 {
            for j in 0..<5 { ratings.append("\(u),\((u + 2 * j) % 8 + 1),\(3 + Double(j % 3) * 0.5),\(1000 + 10 * u + j)") }
        }
        try Data((["movieId,title,genres"] + movies).joined(separator: "\n").utf8).write(to: dir.appendingPathComponent("movies.csv"))
        try Data((["userId,movieId,rating,timestamp"] + ratings).joined(separator: "\n").utf8).write(to: dir.appendingPathComponent("ratings.csv"))
        let rows = tags.map { "\($0.user),\($0.movie),\($0.tag),5000" }
        try Data((["userId,movieId,tag,timestamp"] + rows).joined(separator: "\n").utf8).write(to: dir.appendingPathComponent("tags.csv"))
        return dir
    }

    /// What `miss embed` encodes for the split: imported, written as .missdata and loaded again on the way.
    func contentForSplit(_ dir: URL) throws -> (texts: [String], features: Matrix, split: EvaluationSplit) {
        let file = dir.appendingPathComponent("d.missdata")
        try MovieLensImporter.load(directory: dir).write(to: file)
        let d = try Dataset.load(from: file)
        let split = EvaluationSplit(dataset: d, seed: Self.splitSeed)
        let texts = d.contentTexts(trainingUsers: split.train)
        return (texts, try ContentFeatures.build(dataset: d, texts: texts).matrix, split)
    }

    @Test func testUsersTagNeverReachesTheContentFeatures() throws {
        // The split depends on the ratings only: find a test and a training user from a folder without tags.
        let split = try contentForSplit(try movieLens(tags: [])).split
        #expect(split.test.count == 2 && split.validation.count == 2 && split.train.count == 16)
        let testUser = split.test[0] + 1, trainingUser = split.train[0] + 1  // ids are 1…20 in first-seen order
        let common = (user: trainingUser, movie: 2, tag: "sequel")

        let base = try contentForSplit(try movieLens(tags: [common]))
        let leakDir = try movieLens(tags: [common, (testUser, 3, "zebraleak")])
        let withTestTag = try contentForSplit(leakDir)
        let withTrainingTag = try contentForSplit(try movieLens(tags: [common, (trainingUser, 3, "zebratrain")]))

        #expect(withTestTag.split == base.split && withTrainingTag.split == base.split)
        #expect(base.texts[1].hasSuffix(". sequel"))
        // The test user's tag is in the dataset, and would be in the text of a split that trained on that user ...
        let d = try MovieLensImporter.load(directory: leakDir)
        #expect(d.itemAnnotations.texts.contains("zebraleak"))
        #expect(d.contentTexts(trainingUsers: 0..<d.userCount)[2].contains("zebraleak"))
        // ... but this split's text and features are those of the folder without it.
        #expect(!withTestTag.texts.joined().contains("zebraleak"))
        #expect(withTestTag.texts == base.texts)
        #expect(withTestTag.features == base.features)
        // A training user's tag reaches the text and changes movie 3's features.
        #expect(withTrainingTag.texts[2].hasSuffix(". zebratrain"))
        #expect(withTrainingTag.features.row(2) != base.features.row(2))
    }
}
