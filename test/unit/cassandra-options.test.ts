import { expect } from 'chai';
import { parseReplication, replicationCql } from '../../src/config/cassandra-options.js';
import { loadConfig } from '../../src/config/load-config.js';
import { ConfigError } from '../../src/errors.js';
import { cassandraSchemaCql, hourSlices } from '../../src/store/cassandra-store.js';

describe('cassandra options', () => {
  it('reads the replication forms and renders a canonical CQL map', () => {
    expect(parseReplication("{'class': 'SimpleStrategy', 'replication_factor': 1}")).to.deep.equal({
      class: 'SimpleStrategy',
      replication_factor: 1,
    });
    expect(
      parseReplication("{'class':'org.apache.cassandra.locator.SimpleStrategy','replication_factor':'3'}"),
    ).to.deep.equal({ class: 'SimpleStrategy', replication_factor: 3 });
    expect(parseReplication('SimpleStrategy:2')).to.deep.equal({ class: 'SimpleStrategy', replication_factor: 2 });
    const nts = parseReplication('NetworkTopologyStrategy:dc1=3, dc-2=2');
    expect(nts).to.deep.equal({ class: 'NetworkTopologyStrategy', dcs: { dc1: 3, 'dc-2': 2 } });
    expect(replicationCql(nts)).to.equal("{'class': 'NetworkTopologyStrategy', 'dc1': 3, 'dc-2': 2}");
    expect(parseReplication(replicationCql(nts))).to.deep.equal(nts);
  });

  it('refuses replication text that is not plainly one of the forms', () => {
    for (const bad of [
      "{'class': 'SimpleStrategy'}",
      "{'class': 'SimpleStrategy', 'replication_factor': 0}",
      "{'class': 'LocalStrategy'}",
      "{'class': 'SimpleStrategy', 'replication_factor': 1}; DROP KEYSPACE x",
      "{'class': 'NetworkTopologyStrategy', 'dc1''': 3}",
      'NetworkTopologyStrategy:',
      '3',
    ]) {
      expect(() => parseReplication(bad), bad).to.throw(Error);
    }
  });

  it('config: defaults, validation of keyspace and consistency', () => {
    const { config } = loadConfig({ configPath: '/dev/null' });
    expect(config.cassandra).to.deep.include({
      hosts: ['127.0.0.1'],
      port: 9042,
      keyspace: 'mykeyspace',
      localDc: 'datacenter1',
      consistency: 'LOCAL_QUORUM',
      requestTimeoutMs: 2000,
      ttlDays: 0,
      createSchema: true,
      username: '',
      password: '',
    });
    const hosts = loadConfig({
      configPath: '/dev/null',
      overrides: { 'cassandra.host': 'a, b:9043', 'cassandra.consistency': 'local_one' },
    }).config.cassandra;
    expect(hosts.hosts).to.deep.equal(['a', 'b:9043']);
    expect(hosts.consistency).to.equal('LOCAL_ONE');
    for (const [key, value] of [
      ['cassandra.keyspace', 'my-ks'],
      ['cassandra.keyspace', 'ks; DROP'],
      ['cassandra.consistency', 'ANY'],
      ['cassandra.replication', 'x'],
      ['cassandra.create_schema', 'yes'],
    ]) {
      expect(() => loadConfig({ configPath: '/dev/null', overrides: { [key!]: value! } }), `${key}=${value}`).to.throw(
        ConfigError,
      );
    }
  });

  it('hourSlices splits a range into hour partitions in key order', () => {
    const h = Date.UTC(2016, 8, 9, 14) / 1000;
    expect(hourSlices({ device_id: 'd', from: h + 1800, to: h + 3600 + 60 })).to.deep.equal([
      { ec_date: '20160909', ec_hour: '14', fromTime: '143000', toTime: '150000' },
      { ec_date: '20160909', ec_hour: '15', fromTime: '150000', toTime: '150100' },
    ]);
    expect(hourSlices({ device_id: 'd', from: h, to: h + 3600 })).to.have.length(1);
    expect(hourSlices({ device_id: 'd', from: h, to: h })).to.deep.equal([]);
    const midnight = Date.UTC(2016, 8, 10) / 1000;
    expect(hourSlices({ device_id: 'd', from: midnight - 5, to: midnight + 5 })).to.deep.equal([
      { ec_date: '20160909', ec_hour: '23', fromTime: '235955', toTime: '240000' },
      { ec_date: '20160910', ec_hour: '00', fromTime: '000000', toTime: '000005' },
    ]);
    expect(hourSlices({ device_id: 'd', from: midnight, to: midnight + 86_400 })).to.have.length(24);
    expect(hourSlices({ device_id: 'd', from: midnight + 1, to: midnight + 86_401 })).to.have.length(25);
  });

  it('schema CQL: hour-bucketed partition key, TWCS, TTL from days', () => {
    const cql = cassandraSchemaCql({
      keyspace: 'ks',
      replication: { class: 'SimpleStrategy', replication_factor: 1 },
      ttlDays: 2,
    });
    expect(cql).to.include('PRIMARY KEY ((device_id, ec_date, ec_hour), ec_time, start_us, end_us)');
    expect(cql).to.include(
      "'class': 'TimeWindowCompactionStrategy', 'compaction_window_unit': 'DAYS', 'compaction_window_size': 1",
    );
    expect(cql).to.include('default_time_to_live = 172800');
    expect(cql).to.not.match(/ALLOW FILTERING/i);
  });
});
