// Exhaustive exploration of a machine with xstate/graph: every event (including the done/error
// events of its invoked slots and its `after` events) is tried in every reachable state, and each
// step records which declared transitions `getTransitionData` selected. Pure: no actor runs.
import type { AnyStateMachine, AnyStateNode, EventObject } from 'xstate';
import { getAdjacencyMap } from 'xstate/graph';
import { topLevelState } from '../../machines/persistence.ts';

interface TransitionLike {
  source: AnyStateNode;
  eventType: string;
}

const allNodes = (node: AnyStateNode): AnyStateNode[] => [node, ...Object.values(node.states).flatMap(allNodes)];

const keyOf = (t: TransitionLike): string => {
  const index = (t.source.transitions.get(t.eventType) ?? []).indexOf(t as never);
  if (index < 0) throw new Error(`transition ${t.source.id} ${t.eventType} is not a declared one`);
  return `${t.source.id} on ${t.eventType} #${index}`;
};

export const declaredTransitions = (machine: AnyStateMachine): string[] =>
  allNodes(machine.root).flatMap((node) =>
    [...node.transitions.entries()].flatMap(([eventType, list]) => list.map((_, i) => `${node.id} on ${eventType} #${i}`)),
  );

// The `after` events of every state, so delays can be "fired" without a clock.
export const afterEvents = (machine: AnyStateMachine): EventObject[] =>
  allNodes(machine.root).flatMap((node) => node.after.map((t: TransitionLike) => ({ type: t.eventType })));

export interface Coverage {
  reached: Set<string>;
  taken: Set<string>;
  missing: string[];
  crashed: string[];
  states: number;
}

export const explore = (
  machine: AnyStateMachine,
  opts: { inputs: unknown[]; events: EventObject[]; serialize: (snapshot: { value: unknown; context: any }) => string },
): Coverage => {
  const reached = new Set<string>();
  const taken = new Set<string>();
  const crashed: string[] = [];
  let states = 0;
  for (const input of opts.inputs) {
    const adjacency = getAdjacencyMap(machine, {
      input,
      events: opts.events,
      // xstate.* events are only sent where a state declares them: an unhandled error event would
      // (correctly) crash the machine, and a real slot only reports while its state is active.
      filterEvents: (snapshot, event) =>
        !event.type.startsWith('xstate.') || snapshot._nodes.some((n: AnyStateNode) => n.transitions.has(event.type)),
      serializeState: (snapshot) => `${snapshot.status}|${opts.serialize(snapshot)}`,
      limit: 100_000,
    });
    for (const { state, transitions } of Object.values(adjacency)) {
      states += 1;
      if (state.status !== 'active') crashed.push(`${JSON.stringify(state.value)} status ${state.status}`);
      reached.add(topLevelState(state));
      for (const { event } of Object.values(transitions) as Array<{ event: EventObject }>) {
        for (const t of machine.getTransitionData(state as never, event)) taken.add(keyOf(t));
      }
    }
  }
  const missing = declaredTransitions(machine).filter((k) => !taken.has(k));
  return { reached, taken, missing, crashed, states };
};
