#!/bin/bash
# Terminates EC2 instances that have been stopped for longer than the
# configured number of days. Reads its configuration from the step spec via ni.
set -euo pipefail

eval "$(ni aws env)"
REGION="$(ni get -p '{.aws.region}')"
MAX_AGE_DAYS="$(ni get -p '{.maxAgeDays}')"
DRY_RUN="$(ni get -p '{.dryRun}')"
INSTANCES="$(ni get -p '{.instances}')"

cutoff="$(date -u -d "-$MAX_AGE_DAYS days" +%s)"
: > /tmp/terminate.txt

for id in $(echo "$INSTANCES" | jq -r '.[] | select(.State.Name == "stopped") | .InstanceId'); do
  reason="$(echo "$INSTANCES" | jq -r --arg id "$id" '.[] | select(.InstanceId == $id) | .StateTransitionReason')"
  stopped_at="$(echo "$reason" | grep -oE '[0-9]{4}-[0-9]{2}-[0-9]{2} [0-9:]{8}' || true)"
  if [ -z "$stopped_at" ]; then
    ni log warn "could not determine stop time for $id, skipping"
    continue
  fi
  if [ "$(date -u -d "$stopped_at" +%s)" -lt "$cutoff" ]; then
    echo "$id" >> /tmp/terminate.txt
  fi
done

count="$(wc -l < /tmp/terminate.txt | tr -d ' ')"
ni log info "found $count instance(s) stopped for more than $MAX_AGE_DAYS days"
ni output set --key instanceIDs --value "$(jq -R . < /tmp/terminate.txt | jq -sc .)" --json

if [ "$DRY_RUN" = "true" ]; then
  ni log info "dry run: not terminating anything"
  exit 0
fi

if [ "$count" -gt 0 ]; then
  # shellcheck disable=SC2046
  aws ec2 terminate-instances --region "$REGION" --instance-ids $(cat /tmp/terminate.txt)
fi
