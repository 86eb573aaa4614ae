import Foundation
import MISSCore

/// Imports the MovieLens CSV layout (`movies.csv`, `ratings.csv`, optional `tags.csv`), e.g.
/// `../shared/datasets/ml-latest-small`.
///
/// Objectives: rated (every rating), liked (rating ≥ `likedThreshold`), loved (≥ `lovedThreshold`).
/// Text = title + genres. The tags (optional `tags.csv`) are item annotations that keep their writer:
/// `Dataset.contentTexts(trainingUsers:)` adds those of a split's training users to the text. Tags by
/// a user without ratings are left out, as that user belongs to no split. Second modality
/// ("genre_year"): genre multi-hot, the release year scaled to [0, 1] and a one-hot decade.
/// Category = first genre.
public enum MovieLensImporter {
    public struct Options: Sendable {
        public var likedThreshold = 4.0
        public var lovedThreshold = 4.5
        public init() {}
    }

    public static func load(directory: URL, options: Options = Options()) throws -> Dataset {
        let dir = directory.path
        guard FileManager.default.fileExists(atPath: dir) else {
            throw InputError(file: dir, problem: "no such folder", fix: "Pass a MovieLens folder with movies.csv and ratings.csv")
        }
        let movies = try DelimitedFile(path: directory.appendingPathComponent("movies.csv").path, dialect: .csv)
        let mID = try movies.column("movieId"), mTitle = try movies.column("title"), mGenres = try movies.column("genres")
        var itemIDs: [String] = [], titles: [String] = [], genres: [[String]] = []
        var index: [String: Int] = [:]
        for row in movies.rows {
            let id = try movies.field(row, mID).trimmingCharacters(in: .whitespaces)
            guard index[id] == nil else {
                throw InputError(file: movies.path, location: "line \(row.line)", problem: "movieId \(id) appears twice", fix: "Remove the duplicate line")
            }
            index[id] = itemIDs.count
            itemIDs.append(id)
            titles.append(try movies.field(row, mTitle))
            let g = try movies.field(row, mGenres)
            genres.append(g == "(no genres listed)" ? [] : g.split(separator: "|").map(String.init))
        }
        guard !itemIDs.isEmpty else {
            throw InputError(file: movies.path, problem: "lists no movies", fix: "Pass a complete MovieLens folder")
        }

        let ratings = try DelimitedFile(path: directory.appendingPathComponent("ratings.csv").path, dialect: .csv)
        guard !ratings.rows.isEmpty else {
            throw InputError(file: ratings.path, problem: "has a header but no ratings", fix: "Pass a complete MovieLens folder")
        }
        let rUser = try ratings.column("userId"), rMovie = try ratings.column("movieId")
        let rRating = try ratings.column("rating"), rTime = try ratings.column("timestamp")
        var builder = BehaviourTableBuilder()
        for row in ratings.rows {
            let user = try ratings.field(row, rUser)
            let id = try ratings.field(row, rMovie)
            guard let item = index[id] else { throw unknownItem(ratings.path, row.line, id) }
            let rating = try ratings.number(row, rRating)
            let time = try ratings.number(row, rTime)
            let labels: UInt8 = 1 | (rating >= options.likedThreshold ? 2 : 0) | (rating >= options.lovedThreshold ? 4 : 0)
            builder.add(user: user, item: item, time: Int64(time), labels: labels)
        }
        let table = builder.build()
        let annotations = try loadTags(directory.appendingPathComponent("tags.csv").path, items: index, users: table.userIDs)

        // Categories and the genre/year modality.
        let genreNames = Array(Set(genres.flatMap { $0 })).sorted()
        let genreIndex = Dictionary(uniqueKeysWithValues: genreNames.enumerated().map { ($1, $0) })
        let decades = Array(stride(from: 1900, through: 2020, by: 10))
        var features = Matrix(rows: itemIDs.count, cols: genreNames.count + 1 + decades.count)
        for i in 0..<itemIDs.count {
            for g in genres[i] { features[i, genreIndex[g]!] = 1 }
            if let year = releaseYear(titles[i]) {
                features[i, genreNames.count] = Float(min(max(year - 1900, 0), 130)) / 130
                let d = min(max((year - 1900) / 10, 0), decades.count - 1)
                features[i, genreNames.count + 1 + d] = 1
            }
        }
        let texts = (0..<itemIDs.count).map { i in
            [titles[i], genres[i].joined(separator: " ")].filter { !$0.isEmpty }.joined(separator: ". ")
        }
        return Dataset(
            name: directory.lastPathComponent, objectives: ["rated", "liked", "loved"],
            itemIDs: itemIDs, itemTitles: titles, itemTexts: texts,
            itemCategories: genres.map { $0.first.map { Int32(genreIndex[$0]!) } ?? -1 }, categoryNames: genreNames,
            modalities: [Modality(name: "genre_year", values: features)], itemAnnotations: annotations,
            userIDs: table.userIDs, userOffsets: table.offsets, behaviourItems: table.items,
            behaviourTimes: table.times, behaviourLabels: table.labels)
    }

    /// The rows of `tags.csv` (when there is one) as annotations, in file order; blank tags are skipped.
    static func loadTags(_ path: String, items: [String: Int], users userIDs: [String]) throws -> ItemAnnotations {
        var annotations = ItemAnnotations()
        guard FileManager.default.fileExists(atPath: path) else { return annotations }
        let users = Dictionary(uniqueKeysWithValues: userIDs.enumerated().map { ($1, $0) })
        let t = try DelimitedFile(path: path, dialect: .csv)
        let tUser = try t.column("userId"), tMovie = try t.column("movieId"), tTag = try t.column("tag")
        for row in t.rows {
            let id = try t.field(row, tMovie)
            guard let item = items[id] else { throw unknownItem(t.path, row.line, id) }
            let tag = try t.field(row, tTag).trimmingCharacters(in: .whitespaces)
            guard !tag.isEmpty, let user = users[try t.field(row, tUser)] else { continue }
            annotations.append(user: user, item: item, text: tag)
        }
        return annotations
    }

    /// "Toy Story (1995)" → 1995.
    static func releaseYear(_ title: String) -> Int? {
        let t = title.trimmingCharacters(in: .whitespaces)
        guard t.hasSuffix(")"), let open = t.lastIndex(of: "(") else { return nil }
        let inner = t[t.index(after: open)..<t.index(before: t.endIndex)]
        let digits = inner.prefix(4)
        return digits.count == 4 ? Int(digits) : nil
    }

    static func unknownItem(_ path: String, _ line: Int, _ id: String) -> InputError {
        InputError(file: path, location: "line \(line), field 'movieId'", problem: "movie \(id) is not in movies.csv",
                   fix: "Add the movie to movies.csv or remove the line")
    }
}
