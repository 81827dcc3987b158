// The worker's side of shared credit: each coordinator link's share of the
// worker's slots, what that coordinator was last told, and the CREDIT messages
// that move it. The split itself is pure (core/credit-split.ts).

import { splitCredit } from "../core/credit-split.ts";
import type { CoordinatorLink } from "../net/coordinator-link.ts";
import { Kind } from "../protocol/messages.ts";

/** What the worker knows of one link when it rebalances. */
export interface LinkDemand {
  /** The coordinator may lease here now (its shard's current primary, or not heard from yet). */
  eligible: boolean;
  /** Its tasks running here (or waiting for a slot). */
  used: number;
}

export class LinkCredit {
  /** Each link's share (splitCredit). */
  private readonly share = new Map<CoordinatorLink, number>();
  /** What each link's coordinator was last told (HELLO or CREDIT): a HELLO may be unanswered while the share moves. */
  private readonly told = new Map<CoordinatorLink, number>();

  constructor(private readonly slots: number) {}

  /** The share to announce in a (re)connecting link's HELLO; remembered as told. */
  forHello(link: CoordinatorLink): number {
    const slots = this.share.get(link) ?? 0;
    this.told.set(link, slots);
    return slots;
  }

  /** A closed link leases nothing more here: what it was told no longer holds slots (its next HELLO says anew). */
  down(link: CoordinatorLink): void {
    this.told.delete(link);
  }

  forget(link: CoordinatorLink): void {
    this.share.delete(link);
    this.told.delete(link);
  }

  /**
   * Splits the slots among `links` by demand; a link that is up and was told
   * something else hears its new share in a CREDIT, one that is down in its next HELLO.
   */
  rebalance(links: readonly CoordinatorLink[], demand: (link: CoordinatorLink) => LinkDemand): void {
    const state = links.map((l) => {
      // What the coordinator may lease on: the larger of its share and what it was told.
      const granted = Math.max(this.share.get(l) ?? 0, this.told.get(l) ?? 0);
      return { ...demand(l), granted };
    });
    const grants = splitCredit(this.slots, state);
    links.forEach((l, i) => {
      const slots = grants[i]!;
      this.share.set(l, slots);
      if (!l.up || this.told.get(l) === slots) return;
      if (l.sendControl(Kind.CREDIT, { slots })) {
        this.told.set(l, slots);
        l.flushSoon();
      }
    });
  }
}
