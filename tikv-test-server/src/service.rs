//! The gRPC handlers of the test double: PD (`pdpb.PD`) and TiKV
//! (`tikvpb.Tikv`) on one tonic server.
//!
//! Every TiKV handler first applies the region checks a real TiKV makes
//! (region id, epoch, leadership — the latter two driven by injected
//! faults) and answers a region error instead of executing when they fail,
//! so the client's region-cache retry path runs.

use std::pin::Pin;
use std::sync::Arc;

use futures::{Stream, StreamExt};
use tokio::net::TcpListener;
use tokio::sync::{mpsc, oneshot};
use tonic::{Request, Response, Status, Streaming};

use crate::mvcc::Read;
use crate::proto::pdpb::pd_server::{Pd, PdServer};
use crate::proto::pdpb::{self};
use crate::proto::tikvpb::tikv_server::{Tikv, TikvServer};
use crate::proto::{errorpb, kvrpcpb};
use crate::{CLUSTER_ID, REGION_ID, Shared};

/// Serve both services on `listener` until `shutdown` fires.
pub(crate) async fn serve(
    shared: Arc<Shared>,
    listener: TcpListener,
    shutdown: oneshot::Receiver<()>,
) {
    let incoming = futures::stream::unfold(listener, |l| async move {
        let conn = l.accept().await.map(|(s, _)| s);
        Some((conn, l))
    });
    let result = tonic::transport::Server::builder()
        .add_service(PdServer::new(PdService(shared.clone())))
        .add_service(TikvServer::new(TikvService(shared)))
        .serve_with_incoming_shutdown(incoming, async {
            let _ = shutdown.await;
        })
        .await;
    if let Err(e) = result {
        tracing::warn!("test TiKV server stopped: {e}");
    }
}

fn unavailable() -> Status {
    Status::unavailable("test cluster: injected unavailability")
}

// ---------------------------------------------------------------- PD

struct PdService(Arc<Shared>);

impl PdService {
    fn header(&self) -> Option<pdpb::ResponseHeader> {
        Some(pdpb::ResponseHeader {
            cluster_id: CLUSTER_ID,
            error: None,
        })
    }

    fn enter(&self, rpc: &'static str) -> Result<(), Status> {
        if self.0.is_unavailable() {
            return Err(unavailable());
        }
        self.0.count(rpc);
        Ok(())
    }
}

type TsoStream = Pin<Box<dyn Stream<Item = Result<pdpb::TsoResponse, Status>> + Send>>;

#[tonic::async_trait]
impl Pd for PdService {
    type TsoStream = TsoStream;

    async fn get_members(
        &self,
        _: Request<pdpb::GetMembersRequest>,
    ) -> Result<Response<pdpb::GetMembersResponse>, Status> {
        self.enter("GetMembers")?;
        let me = pdpb::Member {
            name: "test-pd".into(),
            member_id: 1,
            client_urls: vec![format!("http://{}", self.0.addr)],
            peer_urls: vec![format!("http://{}", self.0.addr)],
            ..Default::default()
        };
        Ok(Response::new(pdpb::GetMembersResponse {
            header: self.header(),
            members: vec![me.clone()],
            leader: Some(me.clone()),
            etcd_leader: Some(me),
            ..Default::default()
        }))
    }

    async fn tso(
        &self,
        request: Request<Streaming<pdpb::TsoRequest>>,
    ) -> Result<Response<Self::TsoStream>, Status> {
        self.enter("Tso")?;
        let mut inbound = request.into_inner();
        let shared = self.0.clone();
        let (tx, rx) = mpsc::channel(64);
        tokio::spawn(async move {
            while let Some(req) = inbound.next().await {
                let reply = match req {
                    Ok(_) if shared.is_unavailable() => Err(unavailable()),
                    Ok(req) => {
                        let count = req.count.max(1);
                        let (physical, logical) = shared.allocate_ts(u64::from(count));
                        Ok(pdpb::TsoResponse {
                            header: Some(pdpb::ResponseHeader {
                                cluster_id: CLUSTER_ID,
                                error: None,
                            }),
                            count,
                            timestamp: Some(pdpb::Timestamp {
                                physical: physical as i64,
                                logical: logical as i64,
                                suffix_bits: 0,
                            }),
                        })
                    }
                    Err(e) => Err(e),
                };
                let stop = reply.is_err();
                if tx.send(reply).await.is_err() || stop {
                    return;
                }
            }
        });
        let stream = futures::stream::unfold(rx, |mut rx| async move {
            rx.recv().await.map(|item| (item, rx))
        });
        Ok(Response::new(Box::pin(stream)))
    }

    async fn get_region(
        &self,
        _: Request<pdpb::GetRegionRequest>,
    ) -> Result<Response<pdpb::GetRegionResponse>, Status> {
        self.enter("GetRegion")?;
        Ok(Response::new(pdpb::GetRegionResponse {
            header: self.header(),
            region: Some(self.0.region()),
            leader: Some(self.0.peer()),
            ..Default::default()
        }))
    }

    async fn get_region_by_id(
        &self,
        request: Request<pdpb::GetRegionByIdRequest>,
    ) -> Result<Response<pdpb::GetRegionResponse>, Status> {
        self.enter("GetRegionByID")?;
        let found = request.get_ref().region_id == REGION_ID;
        Ok(Response::new(pdpb::GetRegionResponse {
            header: self.header(),
            region: found.then(|| self.0.region()),
            leader: found.then(|| self.0.peer()),
            ..Default::default()
        }))
    }

    async fn get_store(
        &self,
        _: Request<pdpb::GetStoreRequest>,
    ) -> Result<Response<pdpb::GetStoreResponse>, Status> {
        self.enter("GetStore")?;
        Ok(Response::new(pdpb::GetStoreResponse {
            header: self.header(),
            store: Some(self.0.store_meta()),
            ..Default::default()
        }))
    }

    async fn get_all_stores(
        &self,
        _: Request<pdpb::GetAllStoresRequest>,
    ) -> Result<Response<pdpb::GetAllStoresResponse>, Status> {
        self.enter("GetAllStores")?;
        Ok(Response::new(pdpb::GetAllStoresResponse {
            header: self.header(),
            stores: vec![self.0.store_meta()],
        }))
    }

    async fn update_gc_safe_point(
        &self,
        request: Request<pdpb::UpdateGcSafePointRequest>,
    ) -> Result<Response<pdpb::UpdateGcSafePointResponse>, Status> {
        self.enter("UpdateGCSafePoint")?;
        let mut sp = crate::lock(&self.0.gc_safe_point);
        // PD never moves the safe point backwards.
        *sp = (*sp).max(request.get_ref().safe_point);
        Ok(Response::new(pdpb::UpdateGcSafePointResponse {
            header: self.header(),
            new_safe_point: *sp,
        }))
    }
}

// ---------------------------------------------------------------- TiKV

struct TikvService(Arc<Shared>);

impl TikvService {
    /// Availability, call counting and the region checks. `Ok(Some(e))`
    /// means: answer with region error `e`.
    fn enter(
        &self,
        rpc: &'static str,
        ctx: Option<&kvrpcpb::Context>,
    ) -> Result<Option<errorpb::Error>, Status> {
        if self.0.is_unavailable() {
            return Err(unavailable());
        }
        self.0.count(rpc);
        let Some(ctx) = ctx else {
            return Ok(Some(errorpb::Error {
                message: "missing context".into(),
                ..Default::default()
            }));
        };
        if ctx.region_id != REGION_ID {
            return Ok(Some(errorpb::Error {
                message: format!("region {} not found", ctx.region_id),
                region_not_found: Some(errorpb::RegionNotFound {
                    region_id: ctx.region_id,
                }),
                ..Default::default()
            }));
        }
        if self.0.take_fault(|f| &mut f.not_leader) {
            return Ok(Some(errorpb::Error {
                message: "injected: not leader".into(),
                not_leader: Some(errorpb::NotLeader {
                    region_id: REGION_ID,
                    leader: Some(self.0.peer()),
                }),
                ..Default::default()
            }));
        }
        if ctx.region_epoch.as_ref() != Some(&self.0.epoch()) {
            return Ok(Some(errorpb::Error {
                message: "epoch not match".into(),
                epoch_not_match: Some(errorpb::EpochNotMatch {
                    current_regions: vec![self.0.region()],
                }),
                ..Default::default()
            }));
        }
        Ok(None)
    }
}

/// Answer with a region error if the checks failed.
macro_rules! region_check {
    ($self:ident, $rpc:literal, $req:ident, $resp:ty) => {
        if let Some(e) = $self.enter($rpc, $req.context.as_ref())? {
            return Ok(Response::new(<$resp>::default_with_region_error(e)));
        }
    };
}

/// Responses that carry a region error.
trait RegionErrorResponse: Default {
    fn set_region_error(&mut self, e: errorpb::Error);
    fn default_with_region_error(e: errorpb::Error) -> Self {
        let mut r = Self::default();
        r.set_region_error(e);
        r
    }
}

macro_rules! region_error_response {
    ($($t:ty),*) => {$(
        impl RegionErrorResponse for $t {
            fn set_region_error(&mut self, e: errorpb::Error) {
                self.region_error = Some(e);
            }
        }
    )*};
}

region_error_response!(
    kvrpcpb::GetResponse,
    kvrpcpb::ScanResponse,
    kvrpcpb::BatchGetResponse,
    kvrpcpb::PrewriteResponse,
    kvrpcpb::CommitResponse,
    kvrpcpb::BatchRollbackResponse,
    kvrpcpb::CheckTxnStatusResponse,
    kvrpcpb::ResolveLockResponse,
    kvrpcpb::ScanLockResponse,
    kvrpcpb::TxnHeartBeatResponse
);

fn pair(key: Vec<u8>, read: Read, key_only: bool) -> kvrpcpb::KvPair {
    match read {
        Read::Value(v) => kvrpcpb::KvPair {
            key,
            value: if key_only {
                Vec::new()
            } else {
                v.unwrap_or_default()
            },
            error: None,
        },
        Read::Locked(info) => kvrpcpb::KvPair {
            key,
            value: Vec::new(),
            error: Some(kvrpcpb::KeyError {
                locked: Some(*info),
                ..Default::default()
            }),
        },
    }
}

#[tonic::async_trait]
impl Tikv for TikvService {
    async fn kv_get(
        &self,
        request: Request<kvrpcpb::GetRequest>,
    ) -> Result<Response<kvrpcpb::GetResponse>, Status> {
        let req = request.into_inner();
        region_check!(self, "KvGet", req, kvrpcpb::GetResponse);
        let mut resp = kvrpcpb::GetResponse::default();
        match self.0.store().get(&req.key, req.version) {
            Read::Value(Some(v)) => resp.value = v,
            Read::Value(None) => resp.not_found = true,
            Read::Locked(info) => {
                resp.error = Some(kvrpcpb::KeyError {
                    locked: Some(*info),
                    ..Default::default()
                })
            }
        }
        Ok(Response::new(resp))
    }

    async fn kv_scan(
        &self,
        request: Request<kvrpcpb::ScanRequest>,
    ) -> Result<Response<kvrpcpb::ScanResponse>, Status> {
        let req = request.into_inner();
        region_check!(self, "KvScan", req, kvrpcpb::ScanResponse);
        // Reverse scans send the upper bound as start_key (exclusive) and
        // the lower bound as end_key (inclusive).
        let (lower, upper) = if req.reverse {
            (&req.end_key, &req.start_key)
        } else {
            (&req.start_key, &req.end_key)
        };
        let rows = self
            .0
            .store()
            .scan(lower, upper, req.limit as usize, req.version, req.reverse);
        Ok(Response::new(kvrpcpb::ScanResponse {
            pairs: rows
                .into_iter()
                .map(|(k, r)| pair(k, r, req.key_only))
                .collect(),
            ..Default::default()
        }))
    }

    async fn kv_batch_get(
        &self,
        request: Request<kvrpcpb::BatchGetRequest>,
    ) -> Result<Response<kvrpcpb::BatchGetResponse>, Status> {
        let req = request.into_inner();
        region_check!(self, "KvBatchGet", req, kvrpcpb::BatchGetResponse);
        let store = self.0.store();
        let pairs = req
            .keys
            .iter()
            .filter_map(|k| match store.get(k, req.version) {
                Read::Value(None) => None,
                r => Some(pair(k.clone(), r, false)),
            })
            .collect();
        Ok(Response::new(kvrpcpb::BatchGetResponse {
            pairs,
            ..Default::default()
        }))
    }

    async fn kv_prewrite(
        &self,
        request: Request<kvrpcpb::PrewriteRequest>,
    ) -> Result<Response<kvrpcpb::PrewriteResponse>, Status> {
        let req = request.into_inner();
        region_check!(self, "KvPrewrite", req, kvrpcpb::PrewriteResponse);
        if self.0.take_fault(|f| &mut f.write_conflicts) {
            let key = req
                .mutations
                .first()
                .map(|m| m.key.clone())
                .unwrap_or_default();
            let conflict_ts = self.0.next_ts();
            return Ok(Response::new(kvrpcpb::PrewriteResponse {
                errors: vec![crate::mvcc::write_conflict(
                    &key,
                    &req.primary_lock,
                    req.start_version,
                    conflict_ts,
                )],
                ..Default::default()
            }));
        }
        let errors = self.0.store().prewrite(
            &req.mutations,
            &req.primary_lock,
            req.start_version,
            req.lock_ttl,
            req.txn_size,
        );
        Ok(Response::new(kvrpcpb::PrewriteResponse {
            errors,
            ..Default::default()
        }))
    }

    async fn kv_commit(
        &self,
        request: Request<kvrpcpb::CommitRequest>,
    ) -> Result<Response<kvrpcpb::CommitResponse>, Status> {
        let req = request.into_inner();
        region_check!(self, "KvCommit", req, kvrpcpb::CommitResponse);
        let error = self
            .0
            .store()
            .commit(&req.keys, req.start_version, req.commit_version);
        if error.is_none() && self.0.take_fault(|f| &mut f.dropped_commits) {
            return Err(Status::unavailable(
                "test cluster: injected loss of an applied commit's response",
            ));
        }
        Ok(Response::new(kvrpcpb::CommitResponse {
            error,
            commit_version: req.commit_version,
            ..Default::default()
        }))
    }

    async fn kv_batch_rollback(
        &self,
        request: Request<kvrpcpb::BatchRollbackRequest>,
    ) -> Result<Response<kvrpcpb::BatchRollbackResponse>, Status> {
        let req = request.into_inner();
        region_check!(self, "KvBatchRollback", req, kvrpcpb::BatchRollbackResponse);
        let error = self.0.store().rollback(&req.keys, req.start_version);
        Ok(Response::new(kvrpcpb::BatchRollbackResponse {
            error,
            ..Default::default()
        }))
    }

    async fn kv_check_txn_status(
        &self,
        request: Request<kvrpcpb::CheckTxnStatusRequest>,
    ) -> Result<Response<kvrpcpb::CheckTxnStatusResponse>, Status> {
        let req = request.into_inner();
        region_check!(
            self,
            "KvCheckTxnStatus",
            req,
            kvrpcpb::CheckTxnStatusResponse
        );
        let resp = match self.0.store().check_txn_status(
            &req.primary_key,
            req.lock_ts,
            req.current_ts,
            req.rollback_if_not_exist,
        ) {
            Ok(resp) => resp,
            Err(e) => kvrpcpb::CheckTxnStatusResponse {
                error: Some(e),
                ..Default::default()
            },
        };
        Ok(Response::new(resp))
    }

    async fn kv_resolve_lock(
        &self,
        request: Request<kvrpcpb::ResolveLockRequest>,
    ) -> Result<Response<kvrpcpb::ResolveLockResponse>, Status> {
        let req = request.into_inner();
        region_check!(self, "KvResolveLock", req, kvrpcpb::ResolveLockResponse);
        let mut store = self.0.store();
        if req.txn_infos.is_empty() {
            store.resolve(req.start_version, req.commit_version, &req.keys);
        } else {
            for info in &req.txn_infos {
                store.resolve(info.txn, info.status, &[]);
            }
        }
        Ok(Response::new(kvrpcpb::ResolveLockResponse::default()))
    }

    async fn kv_scan_lock(
        &self,
        request: Request<kvrpcpb::ScanLockRequest>,
    ) -> Result<Response<kvrpcpb::ScanLockResponse>, Status> {
        let req = request.into_inner();
        region_check!(self, "KvScanLock", req, kvrpcpb::ScanLockResponse);
        let locks = self.0.store().scan_locks(
            &req.start_key,
            &req.end_key,
            req.max_version,
            req.limit as usize,
        );
        Ok(Response::new(kvrpcpb::ScanLockResponse {
            locks,
            ..Default::default()
        }))
    }

    async fn kv_txn_heart_beat(
        &self,
        request: Request<kvrpcpb::TxnHeartBeatRequest>,
    ) -> Result<Response<kvrpcpb::TxnHeartBeatResponse>, Status> {
        let req = request.into_inner();
        region_check!(self, "KvTxnHeartBeat", req, kvrpcpb::TxnHeartBeatResponse);
        let resp = match self.0.store().heartbeat(
            &req.primary_lock,
            req.start_version,
            req.advise_lock_ttl,
        ) {
            Ok(ttl) => kvrpcpb::TxnHeartBeatResponse {
                lock_ttl: ttl,
                ..Default::default()
            },
            Err(e) => kvrpcpb::TxnHeartBeatResponse {
                error: Some(e),
                ..Default::default()
            },
        };
        Ok(Response::new(resp))
    }
}
