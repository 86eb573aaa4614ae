import Foundation
import Testing
import MISSTestSupport
import MISSCore
import MISSData

@Suite struct MovieLensImporterTests {
    @Test func importsMlLatestSmall() throws {
        let d = try MovieLensImporter.load(directory: Paths.movieLens)
        try d.validate(source: "ml-latest-small")
        #expect(d.itemCount == 9742 && d.userCount == 610 && d.behaviourCount == 100_836)
        let toyStory = d.itemIndex()["1"]!
        #expect(d.itemTitles[toyStory] == "Toy Story (1995)")
        #expect(d.itemTexts[toyStory] == "Toy Story (1995). Adventure Animation Children Comedy Fantasy")
        // Every row of tags.csv (all by users with ratings) is an annotation; Toy Story's are pixar, pixar, fun.
        let tagRows = try String(contentsOf: Paths.movieLens.appendingPathComponent("tags.csv"), encoding: .utf8)
            .split(separator: "\n").count - 1
        #expect(d.itemAnnotations.count == tagRows)
        #expect(d.contentTexts(trainingUsers: 0..<d.userCount)[toyStory] == d.itemTexts[toyStory] + ". pixar. fun")
        #expect(d.category(ofItem: toyStory) == "Adventure")
        // Objective counts against an independent scan of ratings.csv.
        let csv = try String(contentsOf: Paths.movieLens.appendingPathComponent("ratings.csv"), encoding: .utf8)
        let ratings = csv.split(separator: "\n").dropFirst().map { Double($0.split(separator: ",")[2])! }
        #expect(d.behaviourLabels.filter { $0 & 2 != 0 }.count == ratings.filter { $0 >= 4 }.count)
        #expect(d.behaviourLabels.filter { $0 & 4 != 0 }.count == ratings.filter { $0 >= 4.5 }.count)
        // Quoted titles with commas survive.
        #expect(d.itemTitles.contains("American President, The (1995)"))
        // Genre/year modality: Toy Story is 1995 → decade 1990s.
        let m = d.modalities[0].values
        let genres = d.categoryNames.count
        #expect(abs(m[toyStory, genres] - 95.0 / 130) < 1e-6)
        #expect(m[toyStory, genres + 1 + 9] == 1)
    }

    func makeMovieLens(_ dir: URL, movies: String, ratings: String) throws {
        try write(movies, to: dir.appendingPathComponent("movies.csv"))
        try write(ratings, to: dir.appendingPathComponent("ratings.csv"))
    }

    /// Tags keep their writer and stay out of the item text; a tag by a user without ratings, or a blank one, is left out.
    @Test func tagsAreAnnotationsWithTheirWritersNotItemText() throws {
        let dir = try temporaryDirectory()
        try makeMovieLens(dir, movies: "movieId,title,genres\n1,\"Heat, The (1995)\",Action|Crime\n2,Up (2009),Animation\n",
                          ratings: "userId,movieId,rating,timestamp\n7,1,4.0,100\n5,2,3.0,90\n5,1,5.0,95\n")
        try write("userId,movieId,tag,timestamp\n5,1,Pacino,1\n7,1,\"heist, long\",2\n9,2,ghost,3\n7,2,  ,4\n5,2,Pixar,5\n",
                  to: dir.appendingPathComponent("tags.csv"))
        let d = try MovieLensImporter.load(directory: dir)
        try d.validate(source: "tiny")
        #expect(d.itemTexts == ["Heat, The (1995). Action Crime", "Up (2009). Animation"])
        #expect(d.userIDs == ["7", "5"])
        #expect(d.itemAnnotations == ItemAnnotations(users: [1, 0, 1], items: [0, 0, 1], texts: ["Pacino", "heist, long", "Pixar"]))
        #expect(d.contentTexts(trainingUsers: [0]) == ["Heat, The (1995). Action Crime. heist, long", "Up (2009). Animation"])

        try write("movieId,tag,timestamp\n1,Pacino,1\n", to: dir.appendingPathComponent("tags.csv"))
        let e = inputError { _ = try MovieLensImporter.load(directory: dir) }
        #expect(e?.file.hasSuffix("tags.csv") == true && e?.problem.contains("no column 'userId'") == true)
    }

    @Test func badMovieLensInput() throws {
        let dir = try temporaryDirectory()
        let movies = "movieId,title,genres\n1,\"Heat, The (1995)\",Action|Crime\n2,Up (2009),Animation\n"
        try makeMovieLens(dir, movies: movies, ratings: "userId,movieId,rating,timestamp\n1,1,4.0,100\n1,3,5.0,101\n")
        let e1 = inputError { _ = try MovieLensImporter.load(directory: dir) }
        #expect(e1?.location == "line 3, field 'movieId'" && e1?.problem.contains("movie 3") == true)

        try makeMovieLens(dir, movies: movies, ratings: "userId,movieId,rating,timestamp\n1,1,4.0,100\n1,2,five,101\n")
        let e2 = inputError { _ = try MovieLensImporter.load(directory: dir) }
        #expect(e2?.location == "line 3, field 'rating'" && e2?.problem.contains("'five' is not a number") == true)

        try makeMovieLens(dir, movies: movies, ratings: "userId,movieId,stars,timestamp\n1,1,4.0,100\n")
        let e3 = inputError { _ = try MovieLensImporter.load(directory: dir) }
        #expect(e3?.problem.contains("no column 'rating'") == true)

        try makeMovieLens(dir, movies: movies, ratings: "")
        let e4 = inputError { _ = try MovieLensImporter.load(directory: dir) }
        #expect(e4?.file.hasSuffix("ratings.csv") == true && e4?.problem.contains("empty") == true)

        let e5 = inputError { _ = try MovieLensImporter.load(directory: dir.appendingPathComponent("nowhere")) }
        #expect(e5?.problem == "no such folder")
    }
}

@Suite struct RecBoleImporterTests {
    func makeRecBole(_ dir: URL, inter: String, item: String? = nil, user: String? = nil) throws -> URL {
        let base = dir.appendingPathComponent("toy")
        try write(inter, to: URL(fileURLWithPath: base.path + ".inter"))
        for (ext, text) in [("item", item), ("user", user)] {
            let url = URL(fileURLWithPath: base.path + ".\(ext)")
            if let text { try write(text, to: url) } else { try? FileManager.default.removeItem(at: url) }
        }
        return base
    }

    let inter = """
        user_id:token\titem_id:token\trating:float\ttimestamp:float
        u1\ti1\t5\t300
        u1\ti2\t3\t100
        u2\ti1\t4\t50
        u2\ti3\t4.5\t60

        """
    let item = """
        item_id:token\ttitle:token_seq\tgenre:token_seq\temb:float_seq
        i1\tthe first one\tcomedy drama\t0.5 1
        i2\tsecond\tdrama\t1 0
        i3\tthird thing\thorror\t0 0.25

        """

    @Test func importsAtomicFilesWithObjectivesAndFeatures() throws {
        let base = try makeRecBole(try temporaryDirectory(), inter: inter, item: item)
        var o = RecBoleImporter.Options()
        o.labelField = "rating"
        o.objectives = [("rated", -.infinity), ("liked", 4), ("loved", 4.5)]
        o.categoryField = "genre"
        let d = try RecBoleImporter.load(base: base, options: o)
        try d.validate(source: "toy")
        #expect(d.userIDs == ["u1", "u2"] && d.itemIDs == ["i1", "i2", "i3"])
        #expect(d.behaviourItems == [1, 0, 0, 2])  // u1 sorted by time: i2 (100), i1 (300)
        #expect(d.behaviourLabels == [0b001, 0b111, 0b011, 0b111])
        #expect(d.itemTexts[0] == "the first one. comedy drama")
        #expect(d.categoryNames == ["comedy", "drama", "horror"] && d.itemCategories == [0, 1, 2])
        #expect(d.modalities.first?.values == Matrix([[0.5, 1], [1, 0], [0, 0.25]]))
    }

    @Test func withoutItemFileItemsComeFromInteractions() throws {
        let base = try makeRecBole(try temporaryDirectory(), inter: inter)
        let d = try RecBoleImporter.load(base: base)
        #expect(d.itemIDs == ["i1", "i2", "i3"] && d.objectives == ["interaction"])
        #expect(d.behaviourLabels.allSatisfy { $0 == 1 })
    }

    @Test func missingColumnNamesTheFieldAndTheFlag() throws {
        let base = try makeRecBole(try temporaryDirectory(), inter: inter.replacingOccurrences(of: "user_id:token", with: "uid:token"))
        let e = inputError { _ = try RecBoleImporter.load(base: base) }
        #expect(e?.file.hasSuffix("toy.inter") == true)
        #expect(e?.problem.contains("no field 'user_id'") == true && e?.fix.contains("--user-field") == true)
    }

    @Test func malformedNumberNamesTheLine() throws {
        let base = try makeRecBole(try temporaryDirectory(), inter: inter.replacingOccurrences(of: "u2\ti1\t4\t50", with: "u2\ti1\t4\tyesterday"))
        let e = inputError { _ = try RecBoleImporter.load(base: base) }
        #expect(e?.location == "line 4, field 'timestamp'")
        #expect(e?.problem == "'yesterday' is not a number")
    }

    @Test func unknownItemIsAnError() throws {
        let base = try makeRecBole(try temporaryDirectory(), inter: inter + "u3\ti9\t2\t70\n", item: item)
        let e = inputError { _ = try RecBoleImporter.load(base: base) }
        #expect(e?.location == "line 6, field 'item_id'" && e?.problem.contains("'i9'") == true)
    }

    @Test func emptyFilesAreErrors() throws {
        let dir = try temporaryDirectory()
        let e1 = inputError { _ = try RecBoleImporter.load(base: try makeRecBole(dir, inter: "")) }
        #expect(e1?.problem.contains("empty") == true)
        let e2 = inputError { _ = try RecBoleImporter.load(base: try makeRecBole(dir, inter: "user_id:token\titem_id:token\n")) }
        #expect(e2?.problem.contains("no interactions") == true)
    }

    @Test func userWithoutBehavioursIsAnErrorUnlessDropped() throws {
        let base = try makeRecBole(try temporaryDirectory(), inter: inter, user: "user_id:token\tage:float\nu1\t30\nu7\t41\n")
        let e = inputError { _ = try RecBoleImporter.load(base: base) }
        #expect(e?.location == "line 3" && e?.problem.contains("'u7' has no behaviours") == true)
        #expect(e?.fix.contains("--drop-inactive-users") == true)
        var o = RecBoleImporter.Options()
        o.dropInactiveUsers = true
        #expect(try RecBoleImporter.load(base: base, options: o).userIDs == ["u1", "u2"])
    }

    /// Every RecBole type: genre token_seq, year float (i2 without one), kind token (i3 without one), emb float_seq.
    let fieldItems = """
        item_id:token\tgenre:token_seq\tyear:float\tkind:token\temb:float_seq\ttitle:token_seq
        i1\tcomedy drama\t1990\tfilm\t1 5\tthe first one
        i2\tdrama\t\tseries\t3 5\tsecond
        i3\thorror\t2000\t\t\tthird thing
        i4\t\t2010\tfilm\t5 5\tfourth

        """

    func importWithModalityFields(_ fields: [String], items: String? = nil) throws -> Dataset {
        let base = try makeRecBole(try temporaryDirectory(), inter: inter, item: items ?? fieldItems)
        var o = RecBoleImporter.Options()
        o.modalityFields = fields
        return try RecBoleImporter.load(base: base, options: o)
    }

    @Test func modalityFieldsByHand() throws {
        let d = try importWithModalityFields(["genre", "year", "kind", "emb"])
        try d.validate(source: "toy")
        // year and emb are in "fields", so no float field is left for "features".
        #expect(d.modalities.map(\.name) == ["fields"])
        // genre: comedy, drama, horror | year: 1990, 2000, 2010 have mean 2000 and std √(200/3), so ∓√1.5,
        // missing → 0 | kind: film, series | emb: first values 1, 3, 5 → −√1.5, 0, √1.5; the second is always 5 → 0.
        let z = Float(1.5.squareRoot())
        let expected = Matrix([
            [1, 1, 0, -z, 1, 0, -z, 0],
            [0, 1, 0, 0, 0, 1, 0, 0],
            [0, 0, 1, 0, 0, 0, 0, 0],
            [0, 0, 0, z, 1, 0, z, 0],
        ])
        let m = d.modalities[0].values
        #expect(m.rows == 4 && m.cols == 8)
        for r in 0..<4 { for c in 0..<8 { #expect(abs(m[r, c] - expected[r, c]) < 1e-6, "(\(r), \(c)): \(m[r, c])") } }
        // The text is unchanged by the flag: every token field but the id.
        #expect(d.itemTexts[0] == "comedy drama. film. the first one")
    }

    @Test func modalityFieldsBesideTheFeatures() throws {
        let d = try importWithModalityFields(["genre"], items: item)
        #expect(d.modalities.map(\.name) == ["features", "fields"])
        #expect(d.modalities[0].values == Matrix([[0.5, 1], [1, 0], [0, 0.25]]))
        #expect(d.modalities[1].values == Matrix([[1, 1, 0], [0, 1, 0], [0, 0, 1]]))
    }

    @Test func badModalityFieldsNameTheFileTheFieldAndTheFix() throws {
        let unknown = inputError { _ = try importWithModalityFields(["genre", "colour"]) }
        #expect(unknown?.file.hasSuffix("toy.item") == true && unknown?.location == "line 1 (header)")
        #expect(unknown?.problem.contains("no field 'colour'") == true && unknown?.fix.contains("--modality-fields") == true)

        let id = inputError { _ = try importWithModalityFields(["item_id"]) }
        #expect(id?.file.hasSuffix("toy.item") == true && id?.location == "line 1 (header), field 'item_id'")
        #expect(id?.problem.contains("is the item id") == true && id?.fix == "Leave 'item_id' out of --modality-fields")

        let twice = inputError { _ = try importWithModalityFields(["year", "genre", "year"]) }
        #expect(twice?.location == "line 1 (header), field 'year'" && twice?.problem.contains("named twice") == true)

        let empty = inputError { _ = try importWithModalityFields(["kind"], items: "item_id:token\tkind:token\ni1\t\ni2\t\ni3\t\n") }
        #expect(empty?.location == "fields 'kind'" && empty?.problem.contains("no value for any item") == true)

        let base = try makeRecBole(try temporaryDirectory(), inter: inter)
        var o = RecBoleImporter.Options()
        o.modalityFields = ["genre"]
        let noItemFile = inputError { _ = try RecBoleImporter.load(base: base, options: o) }
        #expect(noItemFile?.file == base.path + ".item" && noItemFile?.problem.contains("no such file") == true)
        #expect(noItemFile?.fix.contains("--modality-fields") == true)
    }

    @Test func badModalityFieldValuesNameTheLine() throws {
        // emb and year are named each time: a float field left to "features" must be there for every item.
        let notANumber = inputError { _ = try importWithModalityFields(["emb", "year"], items: fieldItems.replacingOccurrences(of: "2000", with: "200x")) }
        #expect(notANumber?.location == "line 4, field 'year'" && notANumber?.problem == "'200x' is not a number")

        let two = inputError { _ = try importWithModalityFields(["emb", "year"], items: fieldItems.replacingOccurrences(of: "2010", with: "2010 2011")) }
        #expect(two?.location == "line 5, field 'year'" && two?.problem == "has 2 numbers where a float field holds one")
        #expect(two?.fix.contains("float_seq") == true)

        let ragged = inputError { _ = try importWithModalityFields(["emb", "year"], items: fieldItems.replacingOccurrences(of: "3 5", with: "3 5 7")) }
        #expect(ragged?.location == "line 3, field 'emb'" && ragged?.problem == "has 3 numbers where earlier items have 2")
    }

    @Test func badHeaderType() throws {
        let base = try makeRecBole(try temporaryDirectory(), inter: "user_id:token\titem_id\n1\t2\n")
        let e = inputError { _ = try RecBoleImporter.load(base: base) }
        #expect(e?.location == "line 1 (header), column 2")
    }
}
