//! Zips over Lambda's direct upload limit go through S3: bucket `up-<account>-<region>`, key
//! `<name>/<sha256>.zip` (an existing key is not uploaded again).

use super::Ctx;
use super::package::Package;
use crate::names;

/// Uploads `package` (unless already there) and returns (bucket, key).
pub async fn to_s3(ctx: &Ctx<'_>, package: &Package) -> anyhow::Result<(String, String)> {
    let s3 = &ctx.clients.s3;
    let account = ctx.account().await?;
    let bucket = names::bucket(&account, &ctx.clients.region);
    let key = names::bucket_key(ctx.config, &package.sha256_hex);
    if ctx.dry_run {
        return Ok((bucket, key));
    }
    let resource = format!("s3://{bucket}");
    match s3.head_bucket().bucket(&bucket).send().await {
        Ok(_) => {}
        Err(e) if e.as_service_error().is_some_and(|e| e.is_not_found()) => {
            ctx.progress.step(&format!("bucket {bucket}: creating"));
            let mut request = s3.create_bucket().bucket(&bucket);
            if ctx.clients.region != "us-east-1" {
                request = request.create_bucket_configuration(
                    aws_sdk_s3::types::CreateBucketConfiguration::builder()
                        .location_constraint(aws_sdk_s3::types::BucketLocationConstraint::from(
                            ctx.clients.region.as_str(),
                        ))
                        .build(),
                );
            }
            match request.send().await {
                Ok(_) => {}
                Err(e)
                    if e.as_service_error()
                        .is_some_and(|e| e.is_bucket_already_owned_by_you()) => {}
                Err(e) => return Err(ctx.clients.error("s3:CreateBucket", &resource, e).into()),
            }
        }
        Err(e) => return Err(ctx.clients.error("s3:ListBucket", &resource, e).into()),
    }
    let object = format!("s3://{bucket}/{key}");
    match s3.head_object().bucket(&bucket).key(&key).send().await {
        Ok(_) => return Ok((bucket, key)),
        Err(e) if e.as_service_error().is_some_and(|e| e.is_not_found()) => {}
        Err(e) => return Err(ctx.clients.error("s3:GetObject", &object, e).into()),
    }
    ctx.progress.step(&format!(
        "uploading {} MB to {object}",
        package.zip.len() / 1_000_000
    ));
    s3.put_object()
        .bucket(&bucket)
        .key(&key)
        .body(aws_sdk_s3::primitives::ByteStream::from(
            package.zip.clone(),
        ))
        .send()
        .await
        .map_err(|e| ctx.clients.error("s3:PutObject", &object, e))?;
    Ok((bucket, key))
}

/// Deletes every zip of the app (`<name>/` in the bucket), and the bucket once empty.
/// Returns how many objects were deleted.
pub async fn delete_all(ctx: &Ctx<'_>) -> anyhow::Result<usize> {
    let s3 = &ctx.clients.s3;
    let account = ctx.account().await?;
    let bucket = names::bucket(&account, &ctx.clients.region);
    let resource = format!("s3://{bucket}");
    match s3.head_bucket().bucket(&bucket).send().await {
        Ok(_) => {}
        Err(e) if e.as_service_error().is_some_and(|e| e.is_not_found()) => return Ok(0),
        Err(e) => return Err(ctx.clients.error("s3:ListBucket", &resource, e).into()),
    }
    let prefix = format!("{}/", ctx.config.name);
    let listed = s3
        .list_objects_v2()
        .bucket(&bucket)
        .prefix(&prefix)
        .send()
        .await
        .map_err(|e| ctx.clients.error("s3:ListBucket", &resource, e))?;
    let keys: Vec<String> = listed
        .contents()
        .iter()
        .filter_map(|o| o.key().map(str::to_owned))
        .collect();
    if ctx.dry_run {
        return Ok(keys.len());
    }
    for key in &keys {
        s3.delete_object()
            .bucket(&bucket)
            .key(key)
            .send()
            .await
            .map_err(|e| {
                ctx.clients
                    .error("s3:DeleteObject", &format!("s3://{bucket}/{key}"), e)
            })?;
    }
    let rest = s3
        .list_objects_v2()
        .bucket(&bucket)
        .max_keys(1)
        .send()
        .await
        .map_err(|e| ctx.clients.error("s3:ListBucket", &resource, e))?;
    if rest.contents().is_empty() {
        s3.delete_bucket()
            .bucket(&bucket)
            .send()
            .await
            .map_err(|e| ctx.clients.error("s3:DeleteBucket", &resource, e))?;
    }
    Ok(keys.len())
}
