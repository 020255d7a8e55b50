import Foundation
import LMQStore
import Remoting
import StoreNode
import Testing

@Suite("broker.conf")
struct BrokerConfigurationTests {
    @Test("the repository's conf/broker.conf parses with no unknown keys and its documented defaults")
    func repositoryFile() throws {
        let text = try String(contentsOfFile: BrokerProcess.repositoryRoot + "/conf/broker.conf", encoding: .utf8)
        let (configuration, warnings) = try BrokerConfiguration.parse(text, environment: ["HOME": "/home/op"])
        #expect(warnings == [])
        #expect(configuration.listenPort == 10911)
        #expect(configuration.listenAddress == "0.0.0.0")
        #expect(configuration.advertisedHost == "127.0.0.1")
        #expect(configuration.brokerName == "broker-a")
        #expect(configuration.brokerClusterName == "DefaultCluster")
        #expect(configuration.nameServerAddresses == [])
        #expect(configuration.store.flushDiskType == .asyncFlush)
        #expect(configuration.store.flushIntervalCommitLogMillis == 500)
        #expect(configuration.store.mappedFileSizeCommitLog == 1_073_741_824)
        #expect(configuration.store.fileReservedTimeHours == 72)
        #expect(configuration.logLevel == .info)
    }

    @Test("every key is read; NAMESRV_ADDR overrides namesrvAddr")
    func everyKey() throws {
        let text = """
            listenPort=20911
            brokerListenAddress=10.0.0.5
            brokerName=broker-b
            brokerClusterName=C1
            namesrvAddr=10.0.0.1:9876; 10.0.0.2:9876
            storePathRootDir=/data/store
            flushDiskType=SYNC_FLUSH
            flushIntervalCommitLog=100
            mappedFileSizeCommitLog=8388608
            fileReservedTime=24
            logLevel=debug
            logDir=/var/log/broker
            typo=1
            """
        let (configuration, warnings) = try BrokerConfiguration.parse(text)
        #expect(warnings == ["broker.conf: unknown key typo ignored"])
        #expect(configuration.listenPort == 20911)
        #expect(configuration.advertisedHost == "10.0.0.5")
        #expect(configuration.brokerName == "broker-b" && configuration.brokerClusterName == "C1")
        #expect(configuration.nameServerAddresses == [RemotingAddress(host: "10.0.0.1", port: 9876), RemotingAddress(host: "10.0.0.2", port: 9876)])
        #expect(configuration.store.storePathRootDir == "/data/store")
        #expect(configuration.store.flushDiskType == .syncFlush)
        #expect(configuration.store.flushIntervalCommitLogMillis == 100)
        #expect(configuration.store.mappedFileSizeCommitLog == 8_388_608)
        #expect(configuration.store.fileReservedTimeHours == 24)
        #expect(configuration.logLevel == .debug)
        #expect(configuration.logDirectoryPath == "/var/log/broker")

        let overridden = try BrokerConfiguration.parse(text + "\nbrokerIP1=192.168.1.9", environment: ["NAMESRV_ADDR": "ns:1"]).configuration
        #expect(overridden.nameServerAddresses == [RemotingAddress(host: "ns", port: 1)])
        #expect(overridden.advertisedHost == "192.168.1.9")
    }

    @Test("invalid values are refused with the key named")
    func invalidValues() {
        for (text, expected) in [
            ("listenPort=70000\nstorePathRootDir=/s", "listenPort=70000"),
            ("storePathRootDir=/s\nflushDiskType=SOMETIMES", "flushDiskType=SOMETIMES"),
            ("storePathRootDir=/s\nnamesrvAddr=nohost", "namesrvAddr has nohost"),
            ("storePathRootDir=/s\nlogLevel=loud", "logLevel=loud"),
            ("storePathRootDir=/s\nmappedFileSizeCommitLog=1024", "mappedFileSizeCommitLog=1024"),
            ("flushDiskType=SYNC_FLUSH", "storePathRootDir must be set"),
        ] {
            #expect(throws: BrokerConfiguration.LoadError.self, "\(expected)") { try BrokerConfiguration.parse(text) }
            do {
                _ = try BrokerConfiguration.parse(text)
            } catch {
                #expect(error.message.contains(expected), "\(error.message)")
            }
        }
    }
}
