// swift-tools-version: 6.1
import PackageDescription

let package = Package(
    name: "MISSExplorer",
    platforms: [.macOS(.v14)],
    products: [
        .executable(name: "miss", targets: ["miss"]),
        .library(name: "MISSCore", targets: ["MISSCore"]),
        .library(name: "MISSData", targets: ["MISSData"]),
        .library(name: "MISSModel", targets: ["MISSModel"]),
        .library(name: "MISSExplorer", targets: ["MISSExplorer"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", exact: "1.8.2"),
    ],
    targets: [
        // The only two places that see C: OpenBLAS and ncursesw.
        .systemLibrary(name: "CBLAS", path: "Sources/CBLAS"),
        .systemLibrary(name: "CNCurses", path: "Sources/CNCurses"),
        .target(
            name: "MISSCore",
            dependencies: ["CBLAS"]
        ),
        .target(name: "MISSData", dependencies: ["MISSCore"]),
        .target(name: "MISSModel", dependencies: ["MISSCore", "MISSData"]),
        .target(name: "MISSExplorer", dependencies: ["MISSCore", "MISSData", "MISSModel"]),
        .executableTarget(
            name: "miss",
            dependencies: [
                "MISSCore",
                "MISSData",
                "MISSModel",
                "MISSExplorer",
                "CNCurses",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
            ]
        ),
        .target(name: "MISSTestSupport", dependencies: ["MISSCore"], path: "Tests/MISSTestSupport"),
        .testTarget(name: "MISSCoreTests", dependencies: ["MISSCore", "MISSTestSupport"]),
        .testTarget(name: "MISSDataTests", dependencies: ["MISSData", "MISSTestSupport"]),
        .testTarget(name: "MISSModelTests", dependencies: ["MISSModel", "MISSTestSupport"]),
        .testTarget(name: "MISSExplorerTests", dependencies: ["MISSExplorer", "MISSModel", "MISSData", "MISSCore", "MISSTestSupport"],
                    exclude: ["Golden"]),  // golden screens are read from the source tree (#filePath)
        .testTarget(name: "EndToEndTests", dependencies: ["MISSCore", "MISSTestSupport"]),
    ],
    swiftLanguageModes: [.v6]
)
