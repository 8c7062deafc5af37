#!/usr/bin/env python3
"""Merge per-region EC2 instance listings and pick clean-up candidates.

Spec keys: instancesByRegion (map region -> list of instances),
exemptTag (tag key that protects an instance), maxStoppedDays.
Outputs: candidates (map region -> list of instance IDs), count.
"""
import datetime
import re

from relay_sdk import Interface

relay = Interface()
by_region = relay.get('instancesByRegion') or {}
exempt = relay.get('exemptTag')
max_days = int(relay.get('maxStoppedDays'))
now = datetime.datetime.utcnow()
stamp = re.compile(r'\((\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2}) GMT\)')

candidates = {}
for region, instances in by_region.items():
    ids = []
    for inst in instances or []:
        tags = {t['Key']: t['Value'] for t in inst.get('Tags', [])}
        if exempt in tags or inst['State']['Name'] != 'stopped':
            continue
        m = stamp.search(inst.get('StateTransitionReason', ''))
        if not m:
            continue
        stopped = datetime.datetime.strptime(m.group(1), '%Y-%m-%d %H:%M:%S')
        if (now - stopped).days >= max_days:
            ids.append(inst['InstanceId'])
    candidates[region] = ids

relay.outputs.set('candidates', candidates)
relay.outputs.set('count', sum(len(v) for v in candidates.values()))
print(f"{sum(len(v) for v in candidates.values())} stopped instance(s) eligible for termination")
